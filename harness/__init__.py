"""Fine-tune and benchmark small vision-language models on chart QA."""

__version__ = "0.1.0"
