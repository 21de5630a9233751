"""Interactive explorers (ipywidgets), one module per chapter. Each degrades to a static figure headless."""
