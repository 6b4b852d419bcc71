"""Train a glyph ControlNet (optionally with its base UNet and text encoder) on the data stage's triple shards.

One script in the diffusers-example style (``parse_args(argv)`` + ``main(argv)``), also ``textgen
train-controlnet``. Two ways to start:

* ``--pretrained_model``: a diffusers Stable Diffusion folder or hub id (or a saved PosterPipeline folder). The base
  stays frozen in fp16/bf16 (per ``--mixed_precision``) and a ControlNet initialised from its UNet
  (``ControlNetModel.from_unet``) trains in fp32; ``--train_unet`` / ``--train_text_encoder`` unfreeze the others.
* ``--init_config '{"resolution": 128, "unet_channels": [64, 128, 256]}'``: the whole stack is built from scratch
  with :func:`textgen.models.build_stack` and trained jointly (``--train_unet``, usually ``--train_text_encoder``).
  This is how textgen's own small CPU model is made.

Each training sample is a triple from the shards (:mod:`textgen.core.shards`): the image, its training caption
(the form with the words, ``... that reads "OPEN"``) and its layout, from which the glyph image (black text on
white, the ControlNet's condition in ``[0, 1]``) is rendered on the fly at the training resolution inside the
DataLoader workers. The loss is diffusers' DDPM objective (target by the scheduler's prediction type: epsilon,
v_prediction or sample) with optional Min-SNR weighting.

Runs on CPU or GPUs through accelerate (``accelerate launch -m textgen.train_controlnet ...`` for several GPUs).
Checkpoints (``output_dir/checkpoint-STEP``) hold the trainable weights, optimizer, LR schedule, EMA, RNG and the
position in the data stream, so ``--resume_from_checkpoint latest`` continues exactly where the run stopped.
Outputs: ``output_dir/controlnet`` (diffusers ControlNet, safetensors) always; ``output_dir/pipeline`` (a complete
PosterPipeline folder) when the UNet or text encoder were trained; ``train_log.jsonl`` (step, loss, lr, seconds);
validation grids in ``output_dir/validation`` with their OCR scores; TensorBoard logs in ``output_dir/logs``.
See ``docs/training.md`` for the GPU command lines, memory recipes and the CPU from-scratch recipe.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textgen.train_args import (  # noqa: F401  (the option classes are part of this script's interface)
    DataArgs,
    ModelArgs,
    OptimArgs,
    RunArgs,
    TrainArgs,
    _tracker_config,
    add_arguments,
    build_parser,
    parse_args,
)
from textgen.train_checkpoints import (  # noqa: F401
    STATE_NAME,
    CheckpointMixin,
    _last_checkpoint_name,
    _remove_partial_saves,
    _resolve_resume,
    check_checkpoint,
    list_checkpoints,
)
from textgen.train_data import MemoryTriples, check_captions, check_shards
from textgen.train_feed import DataMixin
from textgen.train_loss import (  # noqa: F401
    TextEmbeddingCache,
    conditioned_input,
    loss_target,
    ocr_loss,
    predicted_clean,
    sample_timesteps,
    snr_loss_weights,
    text_region_weights,
)
from textgen.train_models import _cast, _cpu_has_bf16, _dtype, load_models  # noqa: F401
from textgen.train_validation import (  # noqa: F401
    ValidationMixin,
    image_grid,
    load_ocr_engine,
    load_validation_samples,
    ocr_scores,
)

logger = logging.getLogger(__name__)
LOG_NAME = "train_log.jsonl"


class ControlNetTrainer(DataMixin, CheckpointMixin, ValidationMixin):
    """Holds the state of one run: accelerator, models, optimizer, data, EMA, step counter.

    ``ControlNetTrainer(args).train()`` runs the whole thing; :func:`main` is the command-line face.
    """

    def __init__(self, args: TrainArgs):
        self.args = args.validate()
        self.output_dir = Path(args.run.output_dir)
        self.global_step = 0
        self.elapsed = 0.0  # training wall seconds, carried across resumes
        self.log_path = self.output_dir / LOG_NAME
        self.data_seed = args.run.seed  # changes only when a resume cannot continue the stream exactly

    # ------------------------------------------------------------------------------------------ setup
    def setup(self) -> None:
        import torch
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration, set_seed

        args = self.args
        run, optim = args.run, args.optim
        if run.num_threads:
            torch.set_num_threads(run.num_threads)
        if run.mixed_precision == "fp16" and not torch.cuda.is_available():
            raise ValueError("--mixed_precision fp16 needs a CUDA GPU; on a CPU use bf16 (or no)")
        if run.mixed_precision == "bf16" and not torch.cuda.is_available() and not _cpu_has_bf16():
            logger.warning(
                "--mixed_precision bf16 on a CPU without native bf16 (AVX512-BF16/AMX): convolutions fall back to slow"
                " kernels and a step can be ~10x slower than fp32; prefer --mixed_precision no on this machine"
            )
        if run.report_to == "tensorboard":
            try:
                import tensorboard  # noqa: F401
            except ImportError as err:
                raise ImportError("--report_to tensorboard needs tensorboard: pip install 'textgen[train]'") from err
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # tokenizers warn when DataLoader workers fork
        self.shard_list = self._shards()
        check_shards(self.shard_list)

        self.output_dir.mkdir(parents=True, exist_ok=True)
        # Several CPU processes (torchrun, or accelerate launch --cpu) train with gloo DDP only if asked for the CPU.
        cpu_processes = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.accelerator = Accelerator(
            cpu=cpu_processes,
            gradient_accumulation_steps=optim.gradient_accumulation_steps,
            mixed_precision=run.mixed_precision,
            log_with=None if run.report_to == "none" else run.report_to,
            project_config=ProjectConfiguration(
                project_dir=str(self.output_dir), logging_dir=str(self.output_dir / "logs")
            ),
        )
        acc = self.accelerator
        if not acc.is_main_process:
            import diffusers
            import transformers

            diffusers.utils.logging.set_verbosity_error()
            transformers.utils.logging.set_verbosity_error()
        if run.allow_tf32 and torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = True
        set_seed(run.seed)

        # Models: frozen parts in the mixed-precision dtype, trainable parts in fp32.
        m = load_models(args.model, run.seed)
        self.models = m
        self.weight_dtype = _dtype(run.mixed_precision)
        self.train_unet = args.model.train_unet
        self.train_text = args.model.train_text_encoder
        if m.from_scratch and not self.train_text:
            logger.warning("training from scratch with a frozen random text encoder: add --train_text_encoder")
        self.prediction_type = optim.prediction_type or m.noise_scheduler.config.prediction_type
        if optim.prediction_type:
            m.noise_scheduler.register_to_config(prediction_type=optim.prediction_type)
            m.scheduler.register_to_config(prediction_type=optim.prediction_type)
        self.vae_factor = 2 ** (len(m.vae.config.block_out_channels) - 1)
        self.resolution = args.data.resolution or int(m.unet.config.sample_size) * self.vae_factor
        down = self.vae_factor * 2 ** (len(m.unet.config.block_out_channels) - 1)
        if self.resolution % down:
            raise ValueError(
                f"--resolution {self.resolution} must be a multiple of {down} (VAE factor x UNet downsampling)"
            )

        from diffusers.models.attention_processor import AttnProcessor2_0

        for net in (m.unet, m.controlnet):
            if net is not None:
                net.set_attn_processor(AttnProcessor2_0())  # PyTorch SDPA kernels
        check_captions(self.shard_list, m.tokenizer)
        m.vae.requires_grad_(False)
        m.unet.requires_grad_(self.train_unet)
        m.text_encoder.requires_grad_(self.train_text)
        if m.controlnet is not None:
            m.controlnet.requires_grad_(True)
        _cast(m.vae.to(acc.device), self.weight_dtype).eval()
        _cast(m.unet.to(acc.device), torch.float32 if self.train_unet else self.weight_dtype)
        _cast(m.text_encoder.to(acc.device), torch.float32 if self.train_text else self.weight_dtype)
        if m.controlnet is not None:
            _cast(m.controlnet.to(acc.device), torch.float32).train()  # even when --controlnet was saved in fp16
        m.unet.train(self.train_unet)
        m.text_encoder.train(self.train_text)
        if optim.gradient_checkpointing:
            if m.controlnet is not None:
                m.controlnet.enable_gradient_checkpointing()
            m.unet.enable_gradient_checkpointing()
            if self.train_text:
                m.text_encoder.gradient_checkpointing_enable()

        self.trainable: dict[str, Any] = {} if m.controlnet is None else {"controlnet": m.controlnet}
        if m.controlnet is None and not self.train_unet:
            raise ValueError(f"{m.source} has no ControlNet: add --train_unet (there is nothing else to train)")
        if self.train_unet:
            self.trainable["unet"] = m.unet
        if self.train_text:
            self.trainable["text_encoder"] = m.text_encoder
        self.text_cache = None if self.train_text else TextEmbeddingCache(m.text_encoder, run.text_cache_size)

        # Optimizer and learning-rate schedule.
        lr = optim.learning_rate
        if optim.scale_lr:
            lr *= optim.gradient_accumulation_steps * optim.train_batch_size * acc.num_processes
        params = [p for net in self.trainable.values() for p in net.parameters() if p.requires_grad]
        self.optimizer = self._optimizer(params, lr)
        from diffusers.optimization import get_scheduler

        self.lr_scheduler = get_scheduler(
            optim.lr_scheduler,
            optimizer=self.optimizer,
            num_warmup_steps=optim.lr_warmup_steps * acc.num_processes,
            num_training_steps=run.max_train_steps * acc.num_processes,
            num_cycles=optim.lr_num_cycles,
        )
        names = list(self.trainable)
        prepared = acc.prepare(*self.trainable.values(), self.optimizer, self.lr_scheduler)
        for name, net in zip(names, prepared[: len(names)]):
            self.trainable[name] = net
        self.optimizer, self.lr_scheduler = prepared[len(names)], prepared[len(names) + 1]

        self.ema: dict[str, Any] = {}  # on the main process only: the others never validate or save
        if optim.use_ema and acc.is_main_process:
            from diffusers.training_utils import EMAModel

            for name, net in self.trainable.items():
                base = acc.unwrap_model(net)
                self.ema[name] = EMAModel(
                    base.parameters(),
                    decay=optim.ema_decay,
                    use_ema_warmup=True,
                    power=3 / 4,  # reaches 0.999 at ~10k steps: suits short runs
                    foreach=True,
                    model_cls=type(base),
                    model_config=base.config,
                )
                self.ema[name].to(acc.device)
        self.noise_rng = torch.Generator(device=acc.device).manual_seed(run.seed * 1000 + acc.process_index)

        # Resume: weights, optimizer, LR schedule and RNG (accelerate), EMA, step and data position (ours).
        if acc.is_main_process:
            _remove_partial_saves(self.output_dir)
        resume = _resolve_resume(run)
        if resume is not None:
            self.load_checkpoint(resume)
        elif acc.is_main_process and self.log_path.exists():
            self.log_path.unlink()  # a fresh run in an old folder starts a fresh log
        if acc.is_main_process:
            (self.output_dir / "training_args.json").write_text(json.dumps(args.to_dict(), indent=2) + "\n")
            if acc.log_with:
                acc.init_trackers("train_controlnet", config=_tracker_config(args))
        self.recognizer = self._load_recognizer() if optim.ocr_loss_weight else None
        self.memory: dict[str, MemoryTriples] = {}
        if args.data.in_memory:
            self.memory = self._memory_sets()
            self.dataloader = None
        else:
            self.dataloader = self._dataloader(start_batches=self.global_step * optim.gradient_accumulation_steps)
        self.validation = load_validation_samples(args.data) if run.validation_steps else []
        self.ocr_engine = load_ocr_engine(run.validation_ocr) if self.validation and acc.is_main_process else None

    def _load_recognizer(self):
        from textgen.recognizer import WordRecognizer

        recognizer = WordRecognizer.from_pretrained(self.args.optim.recognizer).to(self.accelerator.device)
        recognizer.requires_grad_(False)
        return recognizer.eval()

    def _optimizer(self, params: list[Any], lr: float):
        import torch

        optim = self.args.optim
        kwargs = dict(
            lr=lr,
            betas=(optim.adam_beta1, optim.adam_beta2),
            weight_decay=optim.adam_weight_decay,
            eps=optim.adam_epsilon,
        )
        if optim.use_8bit_adam:
            try:
                import bitsandbytes as bnb
            except ImportError as err:
                raise ImportError("--use_8bit_adam needs bitsandbytes (and a GPU): pip install bitsandbytes") from err
            return bnb.optim.AdamW8bit(params, **kwargs)
        return torch.optim.AdamW(params, foreach=True, **kwargs)

    def encode_prompts(self, batch: dict[str, Any]):
        ids = batch["input_ids"].to(self.accelerator.device)
        if self.text_cache is not None:
            return self.text_cache(list(batch["caption"]), ids)
        return self.trainable["text_encoder"](ids, return_dict=False)[0]

    def compute_loss(self, batch: dict[str, Any]):
        """The DDPM loss of one micro-batch (the forward pass; autocast is set by the caller)."""
        import torch
        import torch.nn.functional as F

        from textgen.models import unet_inputs

        m, acc = self.models, self.accelerator
        device = acc.device
        pixels = batch["pixel_values"].to(device, non_blocking=True).to(self.weight_dtype) / 127.5 - 1.0
        cond = batch["conditioning"].to(device, non_blocking=True).float().div(255.0)
        ink = 1.0 - cond.unsqueeze(1)  # (B, 1, H, W), 1 on the text
        cond = cond.unsqueeze(1).expand(-1, 3, -1, -1)  # the glyph, black on white, in [0, 1]
        with torch.no_grad():
            latents = m.vae.encode(pixels).latent_dist.sample(generator=self.noise_rng) * m.vae.config.scaling_factor
        latents = latents.float()
        noise = torch.randn(latents.shape, generator=self.noise_rng, device=device)
        timesteps = sample_timesteps(
            self.args.optim.timestep_sampling,
            latents.shape[0],
            m.noise_scheduler.config.num_train_timesteps,
            self.noise_rng,
            device,
        )
        noisy = m.noise_scheduler.add_noise(latents, noise, timesteps)
        text = self.encode_prompts(batch)

        controlnet = self.trainable.get("controlnet")
        unet = self.trainable.get("unet", m.unet)
        unet_dtype = torch.float32 if self.train_unet else self.weight_dtype
        residuals = {}
        if controlnet is not None:
            down, mid = controlnet(
                noisy, timesteps, encoder_hidden_states=text.float(), controlnet_cond=cond, return_dict=False
            )
            residuals = {
                "down_block_additional_residuals": [r.to(unet_dtype) for r in down],
                "mid_block_additional_residual": mid.to(unet_dtype),
            }
        inputs = unet_inputs(acc.unwrap_model(unet), latents.shape[1], pixels.shape[-1] // latents.shape[-1])
        unet_input = conditioned_input(
            noisy, inputs, ink, pixels, batch["boxes"], m.vae, self.args.optim.whole_mask_share, self.noise_rng
        )
        pred = unet(
            unet_input.to(unet_dtype),
            timesteps,
            encoder_hidden_states=text.to(unet_dtype),
            return_dict=False,
            **residuals,
        )[0]
        target = loss_target(m.noise_scheduler, latents, noise, timesteps, self.prediction_type)
        gamma, text_weight = self.args.optim.snr_gamma, self.args.optim.text_loss_weight
        if gamma is None and not text_weight:
            loss = F.mse_loss(pred.float(), target.float())
        else:
            error = F.mse_loss(pred.float(), target.float(), reduction="none")
            if text_weight:
                error = error * text_region_weights(ink, tuple(latents.shape[-2:]), text_weight)
            per_sample = error.mean(dim=(1, 2, 3))
            if gamma is not None:
                per_sample = per_sample * snr_loss_weights(m.noise_scheduler, timesteps, gamma, self.prediction_type)
            loss = per_sample.mean()
        if self.recognizer is not None:
            clean = predicted_clean(m.noise_scheduler, pred.float(), noisy.float(), timesteps, self.prediction_type)
            images = m.vae.decode(clean / m.vae.config.scaling_factor).sample
            ocr = ocr_loss(self.recognizer, images, batch, m.noise_scheduler.alphas_cumprod, timesteps)
            if ocr is not None:
                self.last_ocr_loss = ocr.detach()
                loss = loss + self.args.optim.ocr_loss_weight * ocr
        return loss

    # ------------------------------------------------------------------------------------------ train
    def train(self) -> dict[str, Any]:
        """Runs the training loop to ``max_train_steps``; saves the final models. Returns a summary."""
        from tqdm.auto import tqdm

        self.setup()
        acc, run, optim = self.accelerator, self.args.run, self.args.optim
        if acc.is_main_process:
            n_train = sum(p.numel() for net in self.trainable.values() for p in net.parameters())
            logger.info(
                "training %s (%.1f M trainable parameters) from %s at %dpx, batch %d x %d accumulation x %d "
                "processes, prediction %s, steps %d -> %d",
                "+".join(self.trainable), n_train / 1e6, self.models.source, self.resolution, optim.train_batch_size,
                optim.gradient_accumulation_steps, acc.num_processes, self.prediction_type, self.global_step,
                run.max_train_steps,
            )  # fmt: skip
        progress = tqdm(
            total=run.max_train_steps, initial=self.global_step, desc="steps", disable=not acc.is_main_process
        )
        params = [p for net in self.trainable.values() for p in net.parameters() if p.requires_grad]
        data = iter(self.dataloader) if self.dataloader is not None else None
        micro_batch = self.global_step * optim.gradient_accumulation_steps
        self.last_ocr_loss = None
        last_validated = -1
        run_start, step_start = time.perf_counter() - self.elapsed, time.perf_counter()
        losses, data_seconds = [], 0.0
        while self.global_step < run.max_train_steps:
            t0 = time.perf_counter()
            batch = self.next_batch(micro_batch, data)
            micro_batch += 1
            data_seconds += time.perf_counter() - t0
            with acc.accumulate(*self.trainable.values()):
                with acc.autocast():
                    loss = self.compute_loss(batch)
                acc.backward(loss)
                if acc.sync_gradients and optim.max_grad_norm > 0:
                    acc.clip_grad_norm_(params, optim.max_grad_norm)
                self.optimizer.step()
                self.lr_scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
            losses.append(loss.detach())
            if not acc.sync_gradients:
                continue

            # One optimizer step done.
            for name, ema in self.ema.items():
                ema.step(acc.unwrap_model(self.trainable[name]).parameters())
            self.global_step += 1
            progress.update(1)
            step_loss = acc.gather(sum(losses).reshape(1) / len(losses)).mean().item()
            if not math.isfinite(step_loss):
                raise FloatingPointError(
                    f"the loss became {step_loss} at step {self.global_step}: training diverged (try a lower "
                    f"--learning_rate, or resume from the last checkpoint, {_last_checkpoint_name(self.output_dir)})"
                )
            now = time.perf_counter()
            self.elapsed = now - run_start
            record = {
                "step": self.global_step,
                "loss": round(step_loss, 6),
                "lr": self.lr_scheduler.get_last_lr()[0],
                "seconds": round(self.elapsed, 3),
                "step_seconds": round(now - step_start, 4),
                "data_seconds": round(data_seconds, 4),
                "samples": self.global_step * optim.train_batch_size * optim.gradient_accumulation_steps
                * acc.num_processes,
            }  # fmt: skip
            if self.last_ocr_loss is not None:
                record["ocr_loss"] = round(float(self.last_ocr_loss), 5)
            if acc.device.type == "cuda":
                import torch

                record["gpu_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            losses, data_seconds, step_start = [], 0.0, now
            progress.set_postfix(loss=f"{step_loss:.4f}", lr=f"{record['lr']:.2e}")
            if acc.is_main_process:
                with self.log_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
            acc.log({"train/loss": step_loss, "train/lr": record["lr"]}, step=self.global_step)

            out_of_time = run.max_train_seconds is not None and self.elapsed >= run.max_train_seconds
            if out_of_time:
                logger.info("--max_train_seconds %.0f spent at step %d: stopping", run.max_train_seconds,
                            self.global_step)  # fmt: skip
            last = self.global_step == run.max_train_steps or out_of_time
            if run.checkpointing_steps and (self.global_step % run.checkpointing_steps == 0 or last):
                self.save_checkpoint()
            if self.validation and run.validation_steps and self.global_step % run.validation_steps == 0:
                self.validate()
                last_validated = self.global_step
            step_start = time.perf_counter()  # checkpoint and validation time is not step time
            if out_of_time:
                break
        progress.close()

        if self.validation and run.validation_steps and last_validated != self.global_step:
            self.validate()
        outputs = self.save_final()
        acc.end_training()
        cache = self.text_cache
        return {
            "global_step": self.global_step,
            "seconds": round(self.elapsed, 3),
            "outputs": outputs,
            "text_cache_hits": cache.hits if cache else None,
        }


# ==================================================================================================== main
def train(args: TrainArgs) -> dict[str, Any]:
    """Trains with ``args``; returns ``{"global_step", "seconds", "outputs", ...}``."""
    return ControlNetTrainer(args).train()


def run(args: argparse.Namespace) -> int:
    """``textgen train-controlnet``."""
    _configure_logging()
    summary = train(TrainArgs.from_namespace(args))
    saved = ", ".join(summary["outputs"].values())
    print(f"trained to step {summary['global_step']} in {summary['seconds']:.0f} s: {saved}")
    return 0


def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Entry point: parses ``argv`` (default ``sys.argv[1:]``) and trains. Returns the run summary."""
    _configure_logging()
    return train(parse_args(argv))


if __name__ == "__main__":
    main()
