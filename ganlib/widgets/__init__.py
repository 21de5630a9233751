"""Interactive explorers (ipywidgets), one module per chapter. Each degrades to a static figure headless.

Every explorer is a ``LiveView``: controls, and an ``Output`` widget that shows the figure for their current
values. Live (JupyterLab with someone watching, or ``GANLIB_LIVE=1``; see ``ganlib.viz.live_updates_wanted``)
``show()`` displays the widget with that figure already drawn in it and every control change redraws it in
place; otherwise (CI, nbval, the rendered site) ``show()`` draws ``static_figure()`` once instead.
"""
from __future__ import annotations


class LiveView:
    """Shared display logic: ``figure()`` (subclasses) is drawn into ``output`` when live, else shown statically."""

    def __init__(self) -> None:
        import ipywidgets as W

        from ganlib.viz import live_updates_wanted

        self.live = live_updates_wanted()
        self.output = W.Output()
        self._drawn = False  # whether output already shows the current view

    def figure(self):
        """The matplotlib figure for the current control values (what the widget's output shows)."""
        raise NotImplementedError

    def static_figure(self):
        """The figure drawn instead of the widget when live drawing is off (by default the same view)."""
        return self.figure()

    def _view(self):
        """The ipywidgets box: controls and ``output``."""
        raise NotImplementedError

    def redraw(self) -> None:
        """Draw the current view into the widget's own output, replacing what it showed (only when live)."""
        if self.live:
            from ganlib.viz import show_in
            show_in(self.output, self.figure())
            self._drawn = True

    def show(self):
        """Live: display the widget, its output already holding the current view. Otherwise: draw and return
        ``static_figure()``, so CI, exported HTML and the rendered site see the view without a kernel."""
        if self.live:
            from IPython.display import display
            if not self._drawn:
                self.redraw()
            display(self._view())
            return None
        import matplotlib.pyplot as plt
        fig = self.static_figure()
        plt.show()
        return fig

    def _ipython_display_(self) -> None:
        # display(explorer): the live widget; nothing when live drawing is off (no one can move a control
        # there, and the chapters draw the static figure next)
        if self.live:
            from IPython.display import display
            if not self._drawn:
                self.redraw()
            display(self._view())
