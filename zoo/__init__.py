"""Model zoo: builders, pretrained-weight registry and converters."""
