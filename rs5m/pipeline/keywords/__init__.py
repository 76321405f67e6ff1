"""The RS keyword filter stage."""
