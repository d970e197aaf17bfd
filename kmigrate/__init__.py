"""kmigrate: move Keras 1 code and saved models onto modern Keras."""

__version__ = "0.1.0"
