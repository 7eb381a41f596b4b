"""Data contracts: GB/T 34014 identifiers, actors, events and table models."""
