"""The outlier stage: VLM and RS-detector scores per partition, the pooled-quantile decision."""
