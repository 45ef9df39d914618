"""Built-in recommenders."""
