"""Model-side building blocks: quantized layers and codes (``quant``), FATReLU (``activations``), models,
data sets, training with SGD/SAQ/SAM (``train``, ``saq``), conversion of any PyTorch model
(``convert``), evaluation, fingerprints, the model cache (``zoo``) with its locks and progress, and the
results tables (``results``: schemas, validated CSV reading and writing). Imports from no other group."""
