"""Image-folder readers on real PNG/JPEG/BMP/WebP files written with Pillow in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import igm.data as D


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode).save(path)
    return path


def unit(v) -> torch.Tensor:
    return (torch.as_tensor(np.asarray(v), dtype=torch.float32) / 255) * 2 - 1


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    save(root / "b.png", rng.integers(0, 256, (30, 40, 3)))
    save(root / "sub" / "a.jpg", np.full((50, 20, 3), 200))
    save(root / "c.png", rng.integers(0, 256, (16, 16)), "L")
    save(root / "d.bmp", rng.integers(0, 256, (9, 9, 3)))
    save(root / "e.webp", rng.integers(0, 256, (12, 12, 3)))
    (root / "notes.txt").write_text("not an image")
    return root


def test_finds_sorted_images_and_shapes(mixed: Path) -> None:
    ds = D.get("image-folder", path=mixed, size=8)
    rel = [p.relative_to(mixed).as_posix() for p in ds.files]
    assert rel == ["b.png", "c.png", "d.bmp", "e.webp", "sub/a.jpg"]
    assert len(ds) == 5 and ds.shape == (3, 8, 8) and ds.kind == "image"
    for i in range(len(ds)):
        x = ds[i]
        assert x.shape == (3, 8, 8) and x.dtype == torch.float32
        assert float(x.min()) >= -1 and float(x.max()) <= 1
    gray = ds[1]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])  # L converted to RGB
    jpg = ds[4]  # flat colour 200 survives JPEG and resizing approximately
    assert torch.allclose(jpg, torch.full_like(jpg, 200 / 255 * 2 - 1), atol=0.05)
    one = D.get("image-folder", path=mixed, size=8, channels=1)
    assert one.shape == (1, 8, 8) and one[0].shape == (1, 8, 8)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=5)))
    assert batch.shape == (5, 3, 8, 8)


def test_exact_pixels_of_small_png(tmp_path: Path) -> None:
    pix = np.array([[[0, 10, 255], [1, 2, 3]], [[128, 64, 32], [250, 251, 252]]])
    save(tmp_path / "x.png", pix)
    ds = D.get("image-folder", path=tmp_path, size=2)
    torch.testing.assert_close(ds[0], unit(pix).permute(2, 0, 1), rtol=0, atol=1e-6)


def test_center_crop_takes_the_centre(tmp_path: Path) -> None:
    wide = np.zeros((10, 30, 3))
    wide[:, :10] = (0, 0, 255)
    wide[:, 10:20] = (255, 0, 0)
    wide[:, 20:] = (0, 255, 0)
    save(tmp_path / "wide" / "w.png", wide)
    ds = D.get("image-folder", path=tmp_path / "wide", size=10)  # crop=None: short side, 10
    torch.testing.assert_close(ds[0], unit([255, 0, 0]).view(3, 1, 1).expand(3, 10, 10), rtol=0, atol=1e-6)
    tall = np.zeros((12, 12, 3))
    tall[4:8, 4:8] = (7, 200, 9)
    save(tmp_path / "tall" / "t.png", tall)
    ds = D.get("image-folder", path=tmp_path / "tall", size=4, crop=4)
    torch.testing.assert_close(ds[0], unit([7, 200, 9]).view(3, 1, 1).expand(3, 4, 4), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="crop=13"):
        D.get("image-folder", path=tmp_path / "tall", crop=13)


def test_sample_uses_randint_indices(mixed: Path) -> None:
    ds = D.get("image-folder", path=mixed, size=4)
    idx = torch.randint(len(ds), (7,), generator=torch.Generator().manual_seed(1))
    got = ds.sample(7, torch.Generator().manual_seed(1))
    assert torch.equal(got, torch.stack([ds[int(i)] for i in idx]))
    assert torch.equal(got, ds.sample(7, torch.Generator().manual_seed(1)))
    assert not torch.equal(got, ds.sample(7, torch.Generator().manual_seed(2)))


def test_corrupt_file_raise_or_skip(mixed: Path) -> None:
    bad = mixed / "zz_corrupt.png"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError) as err:
        D.get("image-folder", path=mixed, size=8)
    assert str(bad) in str(err.value)
    with pytest.warns(UserWarning) as rec:
        ds = D.get("image-folder", path=mixed, size=8, on_error="skip")
    assert any(str(bad) in str(w.message) for w in rec)
    assert len(ds) == 5 and bad not in ds.files
    with pytest.raises(ValueError, match="on_error"):
        D.get("image-folder", path=mixed, on_error="ignore")


def test_truncated_png_detected(tmp_path: Path) -> None:
    p = save(tmp_path / "t.png", np.random.default_rng(0).integers(0, 256, (40, 40, 3)))
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(ValueError, match="t.png"):
        D.get("image-folder", path=tmp_path)


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_dir"
    with pytest.raises(FileNotFoundError) as err:
        D.get("image-folder", path=missing)
    assert str(missing) in str(err.value) and ".png" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no readable images"):
        D.get("image-folder", path=tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        D.get("celeba", path=missing)


def test_celeba_and_lsun_defaults(tmp_path: Path) -> None:
    face = np.zeros((218, 178, 3))
    face[29:189, 9:169] = (90, 30, 60)  # the central 160x160 square
    save(tmp_path / "000001.png", face)
    celeba = D.get("celeba", path=tmp_path)
    assert celeba.crop == 160 and celeba.shape == (3, 64, 64)
    assert torch.allclose(celeba[0], unit([90, 30, 60]).view(3, 1, 1).expand(3, 64, 64), atol=2 / 255)
    lsun = D.get("lsun", path=tmp_path)
    assert lsun.crop is None and lsun.shape == (3, 64, 64)
    assert float(lsun[0].min()) < -0.9  # the full short side includes the black border
