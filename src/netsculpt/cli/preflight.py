"""Checks the CLI runs before any training, so that a mistake costs seconds, not a trained baseline.

Each check raises :class:`~netsculpt.errors.ConfigError` with one line naming what it found and what to change.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from netsculpt.config.nncf_config import NNCFConfig
from netsculpt.data.datasets import DatasetInfo
from netsculpt.errors import ConfigError

__all__ = ["check_data_root", "check_input_info", "check_out_dir", "check_schedule", "data_source"]


def check_input_info(config: NNCFConfig, info: DatasetInfo, config_path: str | None = None) -> None:
    """The config's ``input_info`` must describe one image batch of the dataset: ``[N, C, H, W]``.

    Raises:
        ConfigError: more than one input, wrong rank, channel count or spatial size.
    """
    infos = config.input_infos
    if not infos:
        return
    where = f"{config_path}: input_info" if config_path else "input_info"
    expected = [1, info.in_channels, *info.image_size]
    fix = (f"Set \"input_info\": {{\"sample_size\": {expected}}} in the config, or remove input_info "
           "(the CLI then takes it from the dataset)")
    found = f"dataset {info.name} has {info.in_channels}-channel {info.image_size[0]}x{info.image_size[1]} images"
    if len(infos) != 1:
        raise ConfigError(f"{where}: the CLI's models take one image input; got {len(infos)} inputs. {fix}.")
    size = list(infos[0].sample_size)
    if len(size) != 4:
        raise ConfigError(f"{where}.sample_size: expected [N, C, H, W] (4 numbers); got {size}; {found}. {fix}.")
    if size[1] != info.in_channels:
        raise ConfigError(f"{where}.sample_size: {size[1]} input channels; got {size}, but {found}. {fix}.")
    if size[2:] != list(info.image_size):
        raise ConfigError(f"{where}.sample_size: spatial size {size[2]}x{size[3]}; got {size}, but {found} "
                          f"(FLOPs and BOPs would be counted at the wrong size). {fix}.")


def check_schedule(config: NNCFConfig, finetune_epochs: int, config_path: str | None = None) -> None:
    """Quantizers whose staged start epoch the fine-tuning never reaches would stay floating point.

    The CLI calls ``epoch_step()`` at the start of each of the ``finetune_epochs`` epochs (0-based), so a
    quantizer group starting at epoch ``s`` is enabled only when ``s <= finetune_epochs - 1`` (or ``s == 0``).
    Skipped when the config has an ``accuracy_aware_training`` section (that loop picks its own epochs).

    Raises:
        ConfigError: a start epoch is never reached; the message names the key and the ``--finetune-epochs`` needed.
    """
    if config.accuracy_aware_training is not None:
        return
    last_epoch = max(finetune_epochs - 1, 0)
    where = f"{config_path}: " if config_path else ""
    for algo in config.algorithms:
        params: Any = getattr(algo, "params", None)
        name = str(getattr(algo, "algorithm", type(algo).__name__))
        for key in ("activations_quant_start_epoch", "weights_quant_start_epoch"):
            start = getattr(params, key, None)
            if isinstance(start, int) and start > last_epoch:
                group = key.split("_", 1)[0]
                raise ConfigError(
                    f"{where}compression.params.{key} is {start} ({name}), but --finetune-epochs {finetune_epochs} "
                    f"only runs epoch(s) 0..{last_epoch}: the {group} quantizers would never be enabled and the "
                    f"model would not be compressed. Pass --finetune-epochs {start + 1} or more, or set {key} "
                    f"to at most {last_epoch}."
                )


def check_out_dir(out: Path) -> None:
    """Create ``out`` and make sure a file can be written there.

    Raises:
        ConfigError: one line with the path and the cause (not a directory, permission denied, ...).
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".netsculpt-write-check-"):
            pass
    except FileExistsError:
        raise ConfigError(f"--out: cannot create directory {out}: a file with that name exists. "
                          "Pass a directory path.") from None
    except OSError as err:
        cause = err.strerror or type(err).__name__
        at = f" ({err.filename})" if err.filename and str(err.filename) != str(out) else ""
        raise ConfigError(f"--out: cannot write to {out}: {cause}{at}. Pass a writable directory.") from None


def check_data_root(root: str | None) -> None:
    """``--data-root`` must be an existing directory (it is searched first; a typo would silently fall back).

    Raises:
        ConfigError: the path does not exist or is not a directory.
    """
    if root is None:
        return
    path = Path(root).expanduser()
    if not path.exists():
        raise ConfigError(f"--data-root: directory not found: {path}. Create it (downloads go there with "
                          "--download) or omit --data-root.")
    if not path.is_dir():
        raise ConfigError(f"--data-root: not a directory: {path}. Pass the directory that holds the dataset files.")
    if not os.access(path, os.R_OK | os.X_OK):
        raise ConfigError(f"--data-root: cannot read {path}: permission denied.")


def data_source(name: str, root: str | None) -> str:
    """Where the files of a dataset were read from (call after loading), for the console and the report."""
    if name == "fashion_mnist":
        from netsculpt.data.fashion_mnist import find_fashion_mnist

        found = find_fashion_mnist("train", root)
        return str(found[0].parent) if found is not None else "unknown"
    if name == "cifar10":
        from netsculpt.data.cifar10 import find_cifar10

        path = find_cifar10(root)
        return str(path) if path is not None else "unknown"
    if name == "digits":
        return "scikit-learn's bundled copy (sklearn.datasets.load_digits)"
    return "unknown"
