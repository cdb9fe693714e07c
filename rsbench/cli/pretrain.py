"""``rsbench pretrain``: pretrain a backbone with its paper's objective, into a checkpoint that
``rsbench run --checkpoint`` evaluates.

The command object is :data:`pretrain`; the CLI group adds it (``main.add_command(pretrain)``).
Torch is imported only when the command runs, so ``rsbench --help`` stays light.
"""

from __future__ import annotations

import json

import click

from rsbench.run.spec import parse_options


@click.command("pretrain")
@click.option("--model", "-m", required=True,
              help="Backbone whose objective to run (one that declares a pretrainer, e.g. skysense-tiny, mars-tiny).")
@click.option("--data", required=True, type=click.Path(file_okay=False),
              help="Pretraining data in the objective's layout (see --fixture).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Backbone checkpoint written at the end (loadable by `rsbench run --checkpoint`).")
@click.option("--steps", default=100, show_default=True, type=int, help="Length of the schedule (cosine LR, EMA).")
@click.option("--max-steps", type=int,
              help="Stop at this step count, leaving a resumable state; rerun without it to continue.")
@click.option("--batch-size", type=int, help="Default: the objective's.")
@click.option("--lr", type=float, help="Peak learning rate (AdamW). Default: the objective's.")
@click.option("--weight-decay", type=float, help="Default: the objective's.")
@click.option("--clip-grad", type=float, help="Gradient-norm clipping threshold. Default: the objective's.")
@click.option("--warmup", type=int, help="Linear warm-up steps. Default: the objective's.")
@click.option("--save-every", type=int, help="Save the training state every N steps (default: steps / 4).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda")
@click.option("--num-workers", default=0, show_default=True, type=int, help="Data-loading processes.")
@click.option("--work-dir", type=click.Path(file_okay=False),
              help="Training state and log.json (default: <out without suffix>.pretrain beside --out).")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="Objective argument, VALUE as JSON (e.g. -o align_weight=0.2 -o mask_ratio=0.75).")
@click.option("--fixture", is_flag=True,
              help="If --data is missing or empty, first write the objective's small synthetic dataset there.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def pretrain(model: str, data: str, out: str, steps: int, max_steps: int | None, batch_size: int | None,
             lr: float | None, weight_decay: float | None, clip_grad: float | None, warmup: int | None,
             save_every: int | None, seed: int, device: str, num_workers: int, work_dir: str | None,
             options: tuple[str, ...], fixture: bool, as_json: bool) -> None:
    """Pretrain MODEL's backbone with its paper's objective on DATA and write the checkpoint OUT.

    Resumable: the training state is saved every --save-every steps; running the same command
    again continues from it (the schedule is --steps long; --max-steps stops early).
    """
    from rsbench.pretraining.loop import PretrainSettings, run_pretraining

    settings = PretrainSettings(model=model, data=data, out=out, steps=steps, max_steps=max_steps,
                                batch_size=batch_size, lr=lr, weight_decay=weight_decay, clip_grad=clip_grad,
                                warmup=warmup, seed=seed, save_every=save_every, device=device,
                                num_workers=num_workers, work_dir=work_dir,
                                objective_options=parse_options(options, json_values=True))
    result = run_pretraining(settings, show_progress=not as_json, write_fixture=fixture)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    first, last = (result.losses[0], result.losses[-1]) if result.losses else (float("nan"), float("nan"))
    resumed = f", resumed at step {result.resumed_from}" if result.resumed_from else ""
    click.echo(f"{model}: step {result.step}/{result.total_steps}{resumed}; loss {first:.4f} -> {last:.4f}")
    if result.checkpoint:
        click.echo(f"checkpoint: {result.checkpoint}")
        click.echo(f"evaluate it: rsbench run --backbone {model} --checkpoint {result.checkpoint} --task ...")
    else:
        click.echo(f"stopped at --max-steps; state: {result.state} (run again to continue)")
    click.echo(f"log: {result.log}")
