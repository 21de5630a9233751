"""Every widget of the course, as a person meets it: open the notebook in JupyterLab, Run All, then look.

At ``GANLIB_SCALE=smoke`` with ``GANLIB_LIVE=1`` (live drawing on, as in a workshop), for each notebook with
widgets and each widget view in it:

1. it renders: no "Error displaying widget", no raw ``VBox(...)`` text, no warning or traceback in the view;
2. its own output already shows an image before any control is touched;
3. every control shows on the page exactly its value in the kernel (read through a kernel client);
4. changing each control (slider, dropdown, text, checkbox, button) changes the image in the widget's own
   output within ``REDRAW_TIMEOUT`` seconds, the page and the kernel agreeing on the new value; a control that
   only takes effect on Train (the playground) is changed, then Train is pressed and must redraw, having
   trained on exactly the controls' values.

A failure leaves a screenshot of the page and of the view in build/browser-artifacts/.
"""
from __future__ import annotations

import json
import re
import time

import pytest

from jlab import (CONTROLS, READ_CONTROL, ROOT, ROOTS, define_helpers, describe, evaluate, run_all, save, snapshot,
                  wait_for_new_image, wait_for_notebook, wait_until_stable, widget_views)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REDRAW_TIMEOUT = 30.0  # seconds from a control change to a settled new image (measured: 1-3 s at smoke)

NOTEBOOKS = ["05b_playground.ipynb", "06_dcgan.ipynb", "07_cgan.ipynb", "08_lapgan.ipynb", "09_pggan.ipynb",
             "10_stylegan.ipynb"]
EXPLORER = re.compile(r"^\s*(\w+)\s*=\s*(?:Playground|LatentInterpolation|ClassPicker|LapGANLevels|FadeSlider|"
                      r"\w+Explorer)\(", re.M)


def shown_explorers(notebook: str) -> int:
    """How many explorers the notebook displays: ``display(x)`` or ``x.show()`` lines for x bound to one."""
    cells = ["".join(c["source"]) for c in json.loads((ROOT / "notebooks" / notebook).read_text())["cells"]
             if c["cell_type"] == "code"]
    names = {m.group(1) for source in cells for m in EXPLORER.finditer(source)}
    shows = re.compile(r"^\s*(?:display\((\w+)\)|(\w+)\.show\(\))", re.M)
    return sum(1 for source in cells for m in shows.finditer(source) if (m.group(1) or m.group(2)) in names)

# What must hold in the kernel after Run All, beyond what the page shows (the page's "1e-3" could be a rounding).
AFTER_RUN_ALL = {
    "05b_playground.ipynb": [
        # Run All ends by choosing WGAN and then NS-GAN again: NS-GAN's preset must be what is left, exactly
        "(pg.lr_g.value, pg.lr_d.value, pg.n_critic.value) == tuple(__import__('ganlib.widgets.playground', "
        "fromlist=['_']).LOSS_PRESETS['ns'][k] for k in ('lr_g', 'lr_d', 'n_critic'))",
        "pg.steps.value == 20",  # smoke's steps, not a slider minimum
    ],
}
PRESETS_EXACT = ("(pg.lr_g.value, pg.lr_d.value, pg.n_critic.value) == tuple(__import__('ganlib.widgets.playground', "
                 "fromlist=['_']).LOSS_PRESETS[pg.loss.value][k] for k in ('lr_g', 'lr_d', 'n_critic'))")
# For a view with a Train button: after Train, it trained on exactly what the controls say.
TRAINED_ON_CONTROLS = {"05b_playground.ipynb": "pg.result.config == pg.config()"}
TEXT_EDITS = {"row seeds": "1, 2, 8", "column seeds": "4, 9"}  # a new, valid value for each text box


def _bad_text(view_text: str):
    for word in ("Traceback", "Warning", "Error", "Exception"):
        if word in view_text:
            return word
    return None


def check_renders(page, root, where: str) -> None:
    text = root.inner_text()
    assert _bad_text(text) is None, f"{where}: the view says {_bad_text(text)!r}:\n{text[:2000]}"
    assert root.locator("[data-mime-type='application/vnd.jupyter.stderr']").count() == 0, \
        f"{where}: something was written to stderr inside the view"


def check_one_image(output, where: str) -> None:
    count = output.locator("img").count()
    assert count == 1, f"{where}: the widget's output shows {count} images, not one"


def page_controls(root) -> list:
    return [(element, element.evaluate(READ_CONTROL)) for element in root.locator(CONTROLS).all()]


def check_page_matches_kernel(client, root, model_id: str, where: str) -> dict:
    """Every control's page text equals its kernel value; returns the kernel's description of the view."""
    info = describe(client, model_id)
    on_page = page_controls(root)
    assert len(on_page) == len(info["controls"]), \
        f"{where}: {len(on_page)} controls on the page, {len(info['controls'])} in the kernel"
    for (_element, seen), control in zip(on_page, info["controls"]):
        assert seen["label"] == control["description"], f"{where}: control order differs: {seen} vs {control}"
        assert seen["shown"] == control["shown"], (
            f"{where}: {control['description']!r} shows {seen['shown']!r} on the page but is "
            f"{control['shown']!r} in the kernel")
    return info


def change(page, element, control) -> None:
    """What a person does to give ``control`` a new value (or to press it)."""
    kind = control["kind"]
    if kind == "Button":
        element.click()
    elif kind == "Dropdown":
        options = control["options"]
        element.locator("select").select_option(label=options[(options.index(control["shown"]) + 1) % len(options)])
    elif "Slider" in kind:
        handle = element.locator(".noUi-handle")
        handle.focus()
        at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
        handle.press("ArrowLeft" if at_max else "ArrowRight")
    elif kind == "Checkbox":
        element.locator("input[type=checkbox]").click()
    elif kind in ("IntText", "BoundedIntText", "FloatText", "BoundedFloatText"):
        field = element.locator("input")
        field.fill(str(int(float(control["shown"])) + 1))
        field.press("Enter")
    elif kind == "Text":
        field = element.locator("input")
        field.fill(TEXT_EDITS.get(control["description"], control["shown"] + ", 9"))
        field.press("Enter")
    else:
        raise AssertionError(f"no way to change a {kind} yet: add one to change()")


def wait_for_kernel_value(client, model_id: str, index: int, old, timeout: float = REDRAW_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = describe(client, model_id)["controls"][index]
        if now["shown"] != old:
            return now
        time.sleep(0.2)
    raise AssertionError(f"the kernel still has {old!r} {timeout:.0f} s after the change")


def check_presets_exact(page, client, root, model_id: str, where: str) -> None:
    """Choose every loss in the page's dropdown: each time the learning rates and n_critic in the kernel must be
    that loss's preset exactly, also after the page had time to send back anything it changed."""
    select = next(el for el, seen in page_controls(root) if seen["label"] == "loss").locator("select")
    labels = [o.strip().replace("\u00a0", " ") for o in select.locator("option").all_inner_texts()]
    for label in labels[1:] + labels[:1]:  # ends on NS-GAN, where Run All left it
        select.select_option(label=label)
        deadline = time.monotonic() + REDRAW_TIMEOUT
        while evaluate(client, "pg.loss.label") != label and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # a slider that snapped a preset would have sent its value back by now
        assert evaluate(client, PRESETS_EXACT), f"{where}: after choosing {label}, the controls are not its preset"
        check_page_matches_kernel(client, root, model_id, f"{where}, loss {label}")


def exercise_view(page, client, notebook: str, root, model_id: str, where: str, latencies: list) -> None:
    """Steps 2-4 of the module docstring for one widget view."""
    output = root.locator(".widget-output").first
    assert output.locator("img").count() >= 1, f"{where}: no image in the widget before any control is touched"
    image = wait_until_stable(output)
    check_one_image(output, where)
    info = check_page_matches_kernel(client, root, model_id, where)
    train = next((i for i, c in enumerate(info["controls"]) if c["kind"] == "Button" and c["description"] == "train"),
                 None)
    for index, control in enumerate(info["controls"]):
        if index == train:
            continue  # pressed after every other change below
        current = describe(client, model_id)["controls"][index]
        if current["disabled"]:
            continue  # e.g. soft labels while a non-BCE loss is chosen
        label = f"{where}, {control['kind']} {control['description']!r}"
        elements = root.locator(CONTROLS).all()
        start = time.monotonic()
        change(page, elements[index], current)
        if current["kind"] != "Button":
            wait_for_kernel_value(client, model_id, index, current["shown"])
        if train is not None:
            root.locator(CONTROLS).all()[train].click()
        try:
            image = wait_for_new_image(output, image, REDRAW_TIMEOUT)
        except TimeoutError as err:
            raise AssertionError(f"{label}: {err}") from None
        latencies.append(time.monotonic() - start)
        check_one_image(output, label)
        check_renders(page, root, label)
        check_page_matches_kernel(client, root, model_id, label)
        if train is not None:
            assert evaluate(client, TRAINED_ON_CONTROLS[notebook]), f"{label}: Train did not use the controls"


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_widget_renders_matches_the_kernel_and_redraws(notebook, lab, browser, artifacts):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    client = None
    timings = {"notebook": notebook}
    start = time.monotonic()
    try:
        page.goto(lab.url(notebook))
        wait_for_notebook(page, lab, notebook)
        timings["run_all_s"] = round(run_all(page, notebook), 1)
        client = lab.kernel_of(notebook)
        define_helpers(client)
        # views of widgets still open in the kernel (a finished progress bar closes itself and leaves the page)
        views = evaluate(client, f"[m for m in {widget_views(save(page, lab, notebook))!r} "
                                 "if m in __import__('ipywidgets').Widget.widgets]")
        roots = page.locator(ROOTS).all()
        outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
        assert not [t for t in outputs if "Error displaying widget" in t], f"{notebook}: a widget failed to display"
        assert not [t for t in outputs if t.lstrip().startswith(("VBox(", "HBox("))], \
            f"{notebook}: a widget is shown as text (no widget manager on the page)"
        assert len(roots) == len(views), f"{notebook}: {len(roots)} widget views on the page, {len(views)} open"
        for number, root in enumerate(roots):
            check_renders(page, root, f"{notebook} widget {number + 1}")
        # the explorers: views with an output of their own (a progress bar has none)
        explorers = [(root, m) for root, m in zip(roots, views) if describe(client, m)["outputs"]]
        expected = shown_explorers(notebook)
        assert expected >= 1 and len(explorers) == expected, \
            f"{notebook}: {len(explorers)} widget views with an output after Run All, {expected} expected"
        for expression in AFTER_RUN_ALL.get(notebook, []):
            assert evaluate(client, expression) is True, f"{notebook}: after Run All, not true: {expression}"
        latencies: list = []
        for number, (root, model_id) in enumerate(explorers):
            where = f"{notebook} view {number + 1}"
            root.scroll_into_view_if_needed()
            try:
                if notebook == "05b_playground.ipynb":
                    check_presets_exact(page, client, root, model_id, where)
                exercise_view(page, client, notebook, root, model_id, where, latencies)
            except BaseException:
                root.screenshot(path=str(artifacts / f"{notebook[:-6]}-view{number + 1}.png"))
                raise
        timings.update(changes=len(latencies), slowest_redraw_s=round(max(latencies, default=0), 1))
    except BaseException:
        page.screenshot(path=str(artifacts / f"{notebook[:-6]}-page.png"), full_page=True)
        raise
    finally:
        timings["total_s"] = round(time.monotonic() - start, 1)
        with open(artifacts / "timings.jsonl", "a") as f:
            f.write(json.dumps(timings) + "\n")
        if client is not None:
            client.stop_channels()
        page.close()
