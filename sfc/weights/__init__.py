"""The authors' released weights: download from the Hub, import into our model files (issue 13)."""
