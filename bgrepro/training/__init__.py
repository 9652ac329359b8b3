"""Training: a classifier on one variant (`classifier`, resumable, DDP under several processes) and the
self-supervised backbone RPS reads where no DINO or MoCo backbone fits the data (`simsiam`)."""
