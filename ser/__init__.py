"""Speech emotion recognition recipes and models."""

__all__ = ["EmotionClassifier", "Prediction"]


def __getattr__(name):
    # Lazy: `import ser.data...` in every program should not load the inference API.
    if name in __all__:
        from ser import api

        return getattr(api, name)
    raise AttributeError(f"module 'ser' has no attribute {name!r}")
