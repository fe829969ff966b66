"""Training engine (PAPER: spec §8): recipe configs, loss, schedule, EMA, resumable DDP training loop.

Modules: ``config`` (TrainConfig and recipes), ``loss`` (thresholded SNR with inactive sources),
``schedule`` (warm-up + step decay), ``ema``, ``checkpoint`` (atomic writes, top-k, averaging),
``dist`` (torchrun / DDP), ``data`` (batches as a function of the step; valid split only),
``validate`` (whole-track chunked validation), ``logs`` (tqdm, CSV, TensorBoard, provenance),
``engine`` (the loop), ``cli`` (``sfc train``).
"""
