"""Documents built from the records: points publications, one file per matter, period exports, charts."""
