"""Tables and figures of the paper built from evaluation scores (``sfc report ...``).

Snakemake passes every input and output path explicitly; nothing here invents a result path.
"""

from __future__ import annotations
