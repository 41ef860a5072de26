"""The ``nn.Module`` of each family; torch is imported here, never by the spec modules."""
