"""Speech emotion recognition recipes and models."""
