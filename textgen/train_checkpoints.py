"""Resumable training checkpoints: written whole or not at all, checked before loading, the newest complete one found.

A checkpoint ``output_dir/checkpoint-STEP`` holds accelerate's state (trainable weights, optimizer, LR schedule,
RNG), the EMA weights (safetensors), the noise generator and ``training_state.json`` (step, time, data position).
It is written as ``.checkpoint-STEP.partial`` and renamed when complete; older ones are pruned only afterwards.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from textgen.train_args import RunArgs

logger = logging.getLogger("textgen.train_controlnet")

STATE_NAME = "training_state.json"
EMA_NAME = "ema.safetensors"
RNG_NAME = "noise_rng_{rank}.safetensors"


def _checkpoint_step(path: Path) -> int:
    match = re.fullmatch(r"checkpoint-(\d+)", path.name)
    return int(match.group(1)) if match else -1


def list_checkpoints(output_dir: Path) -> list[Path]:
    """``checkpoint-STEP`` folders of a run, oldest first."""
    if not output_dir.is_dir():
        return []
    found = [p for p in output_dir.iterdir() if p.is_dir() and _checkpoint_step(p) >= 0]
    return sorted(found, key=_checkpoint_step)


def _last_checkpoint_name(output_dir: Path) -> str:
    found = list_checkpoints(output_dir)
    return found[-1].name if found else "none saved yet"


def check_checkpoint(path: Path) -> dict[str, Any]:
    """Checks a checkpoint folder's files before anything loads them; returns its training state.

    Raises:
        ValueError: naming the first missing, empty, truncated or unreadable file.
    """
    import zipfile

    from safetensors import safe_open

    state_file = path / STATE_NAME
    if not state_file.is_file():
        raise ValueError(f"{path}: incomplete checkpoint (no {STATE_NAME}: the save was interrupted)")
    try:
        state = json.loads(state_file.read_text())
        int(state["global_step"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{state_file}: unreadable training state ({err})") from err
    for file in sorted(path.iterdir()):
        if not file.is_file():
            continue
        if file.stat().st_size == 0:
            raise ValueError(f"{file}: empty file in the checkpoint (a save cut short?)")
        if file.suffix == ".safetensors":
            try:
                with safe_open(str(file), framework="pt") as f:
                    for key in f.keys():  # noqa: SIM118 (safe_open is no dict)
                        f.get_slice(key)
            except Exception as err:  # SafetensorError and OSError alike
                raise ValueError(f"{file}: truncated or corrupt safetensors file ({err})") from err
        elif file.suffix == ".bin" and not zipfile.is_zipfile(file):
            raise ValueError(f"{file}: truncated or corrupt torch file (not a complete archive)")
    return state


def _complete(path: Path) -> bool:
    try:
        check_checkpoint(path)
    except ValueError:
        return False
    return True


def _remove_partial_saves(output_dir: Path) -> None:
    """Deletes the ``.checkpoint-STEP.partial`` folders of saves that were cut short (never resumed from)."""
    if not output_dir.is_dir():
        return
    for partial in output_dir.glob(".checkpoint-*.partial"):
        logger.warning("removing %s: a checkpoint save that did not finish", partial)
        shutil.rmtree(partial, ignore_errors=True)


def _resolve_resume(run: RunArgs) -> Path | None:
    if not run.resume_from_checkpoint:
        return None
    if run.resume_from_checkpoint == "latest":
        found = list_checkpoints(Path(run.output_dir))
        complete = [p for p in found if _complete(p)]
        newest = _checkpoint_step(complete[-1]) if complete else -1
        skipped = [p.name for p in found if p not in complete and _checkpoint_step(p) > newest]
        if skipped:
            logger.warning("--resume_from_checkpoint latest: skipping incomplete or damaged %s", ", ".join(skipped))
        if not complete:
            if found:
                raise ValueError(
                    f"{run.output_dir}: no complete checkpoint to resume from ({', '.join(p.name for p in found)} "
                    "are incomplete or damaged); remove them to start over"
                )
            logger.info("--resume_from_checkpoint latest: no checkpoint in %s yet, starting a new run", run.output_dir)
            return None
        return complete[-1]
    path = Path(run.resume_from_checkpoint)
    if not path.is_dir() and (Path(run.output_dir) / path).is_dir():
        path = Path(run.output_dir) / path
    if not path.is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint {run.resume_from_checkpoint}: no such checkpoint folder")
    if not (path / STATE_NAME).is_file():
        raise FileNotFoundError(f"--resume_from_checkpoint {run.resume_from_checkpoint}: no {STATE_NAME} there")
    return path


def _truncate_log(path: Path, last_step: int) -> None:
    """Drops log lines written after the checkpoint a run resumes from (a crashed run's tail)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= last_step]
    path.write_text("".join(line + "\n" for line in kept))


class CheckpointMixin:
    """``save_checkpoint`` / ``load_checkpoint`` of :class:`textgen.train_controlnet.ControlNetTrainer`."""

    def save_checkpoint(self) -> Path:
        """``output_dir/checkpoint-STEP``: accelerate state + EMA (safetensors) + step, time and data position."""
        from safetensors.torch import save_file

        acc, run = self.accelerator, self.args.run
        final = self.output_dir / f"checkpoint-{self.global_step}"
        # Written under a temporary name and renamed when complete: a run killed mid-save (or a full disk) leaves
        # a .partial folder that resuming ignores, and the older checkpoints are pruned only after the rename.
        path = self.output_dir / f".checkpoint-{self.global_step}.partial"
        if acc.is_main_process and path.exists():
            shutil.rmtree(path)
        acc.wait_for_everyone()
        acc.save_state(str(path))
        path.mkdir(parents=True, exist_ok=True)
        rng = {"noise_rng": self.noise_rng.get_state().cpu()}
        save_file(rng, str(path / RNG_NAME.format(rank=acc.process_index)))
        if acc.is_main_process:
            tensors = {}
            state = {
                "global_step": self.global_step,
                "elapsed_seconds": self.elapsed,
                "micro_batches": self.global_step * self.args.optim.gradient_accumulation_steps,
                "train_batch_size": self.args.optim.train_batch_size,
                "dataloader_num_workers": self.args.data.dataloader_num_workers,
                "num_processes": acc.num_processes,
                "seed": run.seed,
                "trainable": list(self.trainable),
                "ema": {},
            }
            for name, ema in self.ema.items():
                names = [n for n, _ in acc.unwrap_model(self.trainable[name]).named_parameters()]
                for pname, shadow in zip(names, ema.shadow_params):
                    tensors[f"ema.{name}.{pname}"] = shadow.detach().contiguous()
                ema_state = ema.state_dict()
                ema_state.pop("shadow_params")
                state["ema"][name] = ema_state
            if tensors:
                save_file({k: v.cpu().contiguous() for k, v in tensors.items()}, str(path / EMA_NAME))
            (path / STATE_NAME).write_text(json.dumps(state, indent=2) + "\n")  # written last: marks it complete
        acc.wait_for_everyone()
        if acc.is_main_process:
            if final.exists():
                shutil.rmtree(final)
            os.replace(path, final)
            if run.checkpoints_total_limit:
                old = [p for p in list_checkpoints(self.output_dir) if p != final]
                for stale in old[: max(0, len(old) - run.checkpoints_total_limit + 1)]:
                    shutil.rmtree(stale)
        acc.wait_for_everyone()
        logger.info("saved checkpoint %s", final)
        return final

    def load_checkpoint(self, path: Path) -> None:
        from safetensors.torch import load_file

        acc = self.accelerator
        state = check_checkpoint(path)
        if sorted(state["trainable"]) != sorted(self.trainable):
            raise ValueError(
                f"{path}: the checkpoint trained {state['trainable']} but this run trains {list(self.trainable)}; "
                "use the same --train_unet/--train_text_encoder flags to resume"
            )
        try:
            acc.load_state(str(path))
        except Exception as err:  # accelerate/torch errors on a damaged file: name the checkpoint, not a traceback
            raise ValueError(f"{path}: the checkpoint cannot be loaded ({type(err).__name__}: {err}); resume from an "
                             "earlier one with --resume_from_checkpoint checkpoint-STEP") from err  # fmt: skip
        rng = path / RNG_NAME.format(rank=acc.process_index)
        if rng.is_file():
            self.noise_rng.set_state(load_file(str(rng))["noise_rng"])
        else:
            logger.warning("%s: no %s; the noise sequence restarts", path, rng.name)
        tensors = load_file(str(path / EMA_NAME)) if self.ema and (path / EMA_NAME).is_file() else {}
        for name, ema in self.ema.items():
            if name not in state["ema"] or not tensors:
                logger.warning("%s: no EMA of %s saved; the EMA restarts from the current weights", path, name)
                continue
            names = [n for n, _ in acc.unwrap_model(self.trainable[name]).named_parameters()]
            ema_state = dict(state["ema"][name])
            ema_state["shadow_params"] = [tensors[f"ema.{name}.{n}"].to(acc.device) for n in names]
            ema.load_state_dict(ema_state)
        self.global_step = int(state["global_step"])
        self.elapsed = float(state["elapsed_seconds"])
        same_layout = (
            state["train_batch_size"] == self.args.optim.train_batch_size
            and state["dataloader_num_workers"] == self.args.data.dataloader_num_workers
            and state["num_processes"] == acc.num_processes
            and state["seed"] == self.args.run.seed
        )
        if not same_layout:
            logger.warning(
                "%s: batch size, workers, processes or seed changed since the checkpoint: the data stream cannot "
                "continue exactly where it stopped and restarts from a new seeded order",
                path,
            )
            self.data_seed = self.args.run.seed + self.global_step
        if acc.is_main_process:
            _truncate_log(self.log_path, self.global_step)
        logger.info("resumed from %s at step %d", path, self.global_step)
