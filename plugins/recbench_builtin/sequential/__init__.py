"""Sequential recommenders (issue 14): SASRec, GRU4Rec and next-track baselines."""
