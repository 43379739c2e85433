"""Model-side building blocks: quantized layers and codes (``quant``), FATReLU (``activations``), models,
data sets, training with SGD/SAQ/SAM (``train``, ``saq``), conversion of any PyTorch model
(``convert``), evaluation, fingerprints, and the model cache (``zoo``) with its locks and progress."""
