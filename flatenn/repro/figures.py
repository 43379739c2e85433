"""One figure style and save path for every results figure (report and ablation): headless Agg backend."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt", "save_figure", "save_with_legend"]


def save_with_legend(fig, ax, path: Path, title: str, bottom: float = 0.08) -> None:
    """One legend below all panels (from ``ax``), a title that names the scale, then save."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_figure(fig, path: Path) -> None:
    """Tight layout, 110 dpi, close."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
