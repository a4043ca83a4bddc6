"""Images in the terminal: half-block rendering, refusals, and the Values tab's preview."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import wait_for
from fake_engine import fake_app, loaded
from textual.app import App, ComposeResult
from textual.strip import Strip

from tui.app.screens.run_view import RunScreen
from tui.app.widgets.half_block_image import half_block_strips
from tui.app.widgets.image_preview import ImagePreview
from tui.app.widgets.media_list import MediaList
from tui.app.widgets.run_table import RunTable
from tui.app.widgets.values_view import ValuesView
from tui.core import images
from tui.core.images import NO_PILLOW, Decoded, decode_image, fit_size

Image = pytest.importorskip("PIL.Image")

# A 2×4 picture, one distinct colour per pixel, row by row.
PIXELS = [
    [(255, 0, 0), (0, 255, 0)],
    [(0, 0, 255), (255, 255, 0)],
    [(0, 255, 255), (255, 0, 255)],
    [(10, 20, 30), (200, 100, 50)],
]
BACKGROUND = (30, 30, 30)


def write_png(path: Path, rows: list[list[tuple[int, ...]]], mode: str = "RGB") -> Path:
    image = Image.new(mode, (len(rows[0]), len(rows)))
    for y, row in enumerate(rows):
        for x, pixel in enumerate(row):
            image.putpixel((x, y), pixel)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path


def cells(strip: Strip) -> list[tuple[str, tuple[int, int, int], tuple[int, int, int]]]:
    """Each cell of a strip as (character, foreground rgb, background rgb)."""
    out = []
    for segment in strip:
        style = segment.style
        assert style is not None and style.color is not None and style.bgcolor is not None
        fg, bg = style.color.get_truecolor(), style.bgcolor.get_truecolor()
        out.extend((char, tuple(fg), tuple(bg)) for char in segment.text)
    return out


def message(decoded: Decoded) -> str:
    assert decoded.image is None and decoded.message is not None
    return decoded.message


# Decoding and drawing


def test_a_2x4_png_becomes_two_rows_of_half_blocks_with_its_colours(tmp_path: Path) -> None:
    path = write_png(tmp_path / "run" / "media" / "tiny.png", PIXELS)
    decoded = decode_image(path, tmp_path / "run")
    assert decoded.message is None
    assert decoded.description.startswith("PNG 2×4 RGB · ")
    assert fit_size(decoded.image.size, 2, 2) == (2, 4)
    strips = half_block_strips(decoded.image, BACKGROUND)
    assert len(strips) == 2
    for row, strip in enumerate(strips):
        assert cells(strip) == [("▀", PIXELS[2 * row][x], PIXELS[2 * row + 1][x]) for x in range(2)]


def test_odd_rows_and_transparency_use_the_background(tmp_path: Path) -> None:
    rows = [
        [(255, 0, 0, 255), (0, 0, 0, 0)],
        [(0, 0, 255, 128), (0, 255, 0, 255)],
        [(9, 9, 9, 255), (8, 8, 8, 255)],
    ]
    path = write_png(tmp_path / "run" / "alpha.png", rows, mode="RGBA")
    decoded = decode_image(path, tmp_path / "run")
    top, bottom = (cells(s) for s in half_block_strips(decoded.image, BACKGROUND))
    assert top[0] == ("▀", (255, 0, 0), (15, 15, 143))  # half-transparent blue over grey
    assert top[1] == ("▀", BACKGROUND, (0, 255, 0))  # fully transparent: the background
    assert bottom == [("▀", (9, 9, 9), BACKGROUND), ("▀", (8, 8, 8), BACKGROUND)]


def test_fit_size_keeps_the_aspect_ratio() -> None:
    assert fit_size((1000, 500), 100, 24) == (96, 48)  # shrinks to the rows
    assert fit_size((1000, 500), 40, 24) == (40, 20)  # shrinks to the width
    assert fit_size((2, 4), 10, 10) == (10, 20)  # grows by a whole factor
    assert fit_size((2, 4), 100, 100) == (16, 32)  # at most MAX_UPSCALE times
    assert fit_size((3, 3), 4, 10) == (3, 3)  # never a fractional enlargement
    assert fit_size((0, 5), 10, 10) == (0, 0)


def test_the_shapes_sample_png_decodes(samples: Path) -> None:
    run = samples / "shapes"
    decoded = decode_image(run / "media" / "confusion_step200.png", run)
    assert decoded.description == "PNG 24×24 RGB · 1.8 KB"
    original = Image.open(run / "media" / "confusion_step200.png").convert("RGB")
    (first, *_), *_ = (cells(s) for s in half_block_strips(decoded.image, BACKGROUND))
    assert first == ("▀", original.getpixel((0, 0)), original.getpixel((0, 1)))


def test_a_corrupt_png_gives_a_message(tmp_path: Path) -> None:
    good = write_png(tmp_path / "run" / "good.png", PIXELS).read_bytes()
    cut = tmp_path / "run" / "cut.png"
    cut.write_bytes(good[: len(good) // 2])
    assert message(decode_image(cut, tmp_path / "run")).startswith("cannot decode this image")
    noise = tmp_path / "run" / "noise.png"
    noise.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    assert message(decode_image(noise, tmp_path / "run")).startswith("cannot decode this image")
    text = tmp_path / "run" / "notes.png"
    text.write_text("not a picture\n")
    assert message(decode_image(text, tmp_path / "run")).startswith("cannot decode this image")
    vector = tmp_path / "run" / "plot.svg"
    vector.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')
    assert message(decode_image(vector, tmp_path / "run")) == (
        "cannot decode this image: damaged, or not PNG, JPEG, GIF, BMP, WEBP or TIFF"
    )


def test_huge_files_and_decompression_bombs_are_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    path = write_png(run / "big.png", PIXELS)
    assert message(decode_image(path, run, max_bytes=50)).startswith("too large to preview")
    assert "too many pixels" in message(decode_image(path, run, max_pixels=7))
    # Tiny files declaring tens of millions of pixels: Pillow's own limit refuses them.
    for side in (4500, 6000):  # above our limit; above twice it
        bomb = run / f"bomb{side}.png"
        Image.new("1", (side, side)).save(bomb)
        assert bomb.stat().st_size < 100_000
        assert message(decode_image(bomb, run)) == ("refused: the image declares too many pixels")


def test_links_leading_out_of_the_run_are_refused(tmp_path: Path) -> None:
    outside = write_png(tmp_path / "elsewhere" / "secret.png", PIXELS)
    run = tmp_path / "run"
    (run / "media").mkdir(parents=True)
    (run / "media" / "link.png").symlink_to(outside)
    assert message(decode_image(run / "media" / "link.png", run)).startswith("refused")
    (run / "media" / "dir").symlink_to(outside.parent, target_is_directory=True)
    assert message(decode_image(run / "media" / "dir" / "secret.png", run)).startswith("refused")
    # A link that stays inside the run is followed.
    inside = write_png(run / "plot.png", PIXELS)
    (run / "media" / "plot.png").symlink_to(inside)
    assert decode_image(run / "media" / "plot.png", run).image is not None
    os.mkfifo(run / "media" / "pipe.png")
    assert message(decode_image(run / "media" / "pipe.png", run)).startswith("refused")


def test_without_pillow_the_preview_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_png(tmp_path / "run" / "tiny.png", PIXELS)
    monkeypatch.setattr(images, "_pillow", lambda: None)
    assert message(decode_image(path, tmp_path / "run")) == NO_PILLOW
    assert NO_PILLOW == "install tracktui[images] to see images here"


# The widget


class PreviewApp(App[None]):
    def compose(self) -> ComposeResult:
        yield ImagePreview(max_rows=4)


async def test_the_widget_draws_the_picture_under_a_sanitized_caption(tmp_path: Path) -> None:
    run = tmp_path / "run"
    path = write_png(run / "media" / "a\x1b[31mb\u202e.png", PIXELS)
    app = PreviewApp()
    async with app.run_test(size=(40, 12)) as pilot:
        preview = app.query_one(ImagePreview)
        assert not preview.display
        preview.show_image(path, run)
        await wait_for(pilot, lambda: preview.pixels.image is not None)
        await pilot.pause()
        caption = preview.caption.plain
        assert "\x1b" not in caption and "\u202e" not in caption
        assert caption.startswith("ab<U+202E>.png  PNG 2×4 RGB")
        # 2×4 pixels in at most 4 rows of 40 cells: enlarged 2 times, 4 rows of 4 cells.
        assert preview.pixels.size.height == 4
        strips = [preview.pixels.render_line(y) for y in range(4)]
        for y, strip in enumerate(strips):
            drawn = cells(strip.crop(0, 4))
            # each pixel is now 2×2: a cell's top and bottom halves come from one pixel
            assert drawn == [("▀", PIXELS[y][x // 2], PIXELS[y][x // 2]) for x in range(4)]
        preview.show_image(None, run)
        await pilot.pause()
        assert not preview.display


async def test_no_color_shows_a_description_instead_of_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    path = write_png(tmp_path / "run" / "tiny.png", PIXELS)
    app = PreviewApp()
    async with app.run_test(size=(60, 12)) as pilot:
        preview = app.query_one(ImagePreview)
        preview.show_image(path, tmp_path / "run")
        await wait_for(pilot, lambda: preview.decoded is not None)
        await pilot.pause()
        assert "PNG 2×4 RGB" in preview.caption.plain and "NO_COLOR" in preview.caption.plain
        assert not preview.pixels.display and preview.pixels.image is None


async def test_a_broken_image_shows_its_message_in_the_widget(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "media").mkdir(parents=True)
    (run / "media" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnonsense")
    app = PreviewApp()
    async with app.run_test(size=(60, 12)) as pilot:
        preview = app.query_one(ImagePreview)
        preview.show_image(run / "media" / "broken.png", run)
        await wait_for(pilot, lambda: preview.decoded is not None)
        assert "cannot decode this image" in preview.caption.plain
        assert not preview.pixels.display


# In the run view


async def test_values_tab_previews_the_highlighted_image(samples: Path) -> None:
    root = samples.parent / "root"
    root.mkdir()
    shutil.move(samples / "shapes", root / "shapes")
    app = fake_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, runs=1)
        table = app.screen.query_one(RunTable)
        table.move_cursor(row=table.get_row_index("shapes"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
        await pilot.press("3")
        view = app.screen.query_one(ValuesView)
        media = view.query_one(MediaList)
        preview = view.query_one(ImagePreview)
        assert not preview.display

        await pilot.press("m")  # to the list: the first image is highlighted
        assert media.has_focus and media.highlighted_name == "confusion_step200.png"
        await wait_for(pilot, lambda: preview.pixels.image is not None)
        await pilot.pause()
        assert preview.display and preview.pixels.display
        assert preview.caption.plain.startswith("confusion_step200.png  PNG 24×24 RGB")
        original = Image.open(root / "shapes" / "media" / "confusion_step200.png")
        original = original.convert("RGB")
        first = cells(preview.pixels.render_line(0))[0]
        assert first == ("▀", original.getpixel((0, 0)), original.getpixel((0, 0)))
        assert preview.pixels.size.height == 24  # 24×24 pixels, enlarged 2 times
        pixels_region = preview.pixels.region  # scrolled into view, under the list
        assert app.screen.get_widget_at(pixels_region.x + 1, pixels_region.y)[0] is preview.pixels

        await pilot.press("down")  # predictions.txt is not an image: no preview
        assert media.highlighted_name == "predictions.txt"
        await pilot.pause()
        assert not preview.display
        await pilot.press("up")
        await wait_for(pilot, lambda: preview.display and preview.pixels.image is not None)

        # A click on a row highlights it too (line 0 is the heading), once scrolling is over.
        await pilot.wait_for_scheduled_animations()
        await pilot.click(MediaList, offset=(4, 2))
        assert media.highlighted_name == "predictions.txt"
        await pilot.pause()
        assert not preview.display
