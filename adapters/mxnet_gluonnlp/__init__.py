"""MXNet 1.9 + GluonNLP 0.10: the GluonNLP BERT, imperative (mxnet) and exported (mxnet-deploy)."""
