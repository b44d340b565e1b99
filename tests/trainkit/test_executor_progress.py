from shared.contracts.training import ProgressUpdate
from shared.trainkit.executor.progress import PipelineProgress, Step


def _tracker() -> tuple[PipelineProgress, list[ProgressUpdate]]:
    seen: list[ProgressUpdate] = []
    steps = [
        Step("load", 10, "Loading"),
        Step("training", 80, "Training"),
        Step("evaluation", 10, "Evaluating"),
    ]
    return PipelineProgress(steps, seen.append), seen


def test_percentage_follows_step_weights() -> None:
    tracker, seen = _tracker()
    tracker.start("load")
    tracker.report("training", 0.5, "half")
    tracker.start("evaluation")
    assert [u.percentage for u in seen] == [0.0, 50.0, 90.0]


def test_percentage_never_goes_backwards() -> None:
    tracker, seen = _tracker()
    tracker.report("training", 0.75, "late")
    tracker.report("training", 0.25, "a stale report")
    assert seen[-1].percentage == 70.0


def test_early_stop_jumps_to_evaluation_start() -> None:
    tracker, seen = _tracker()
    tracker.report("training", 0.2, "epoch 2 of 10, then early stop")
    tracker.start("evaluation")
    assert seen[-1].percentage == 90.0
    assert seen[-1].phase == "evaluation"


def test_broken_listener_does_not_raise() -> None:
    def listener(update: ProgressUpdate) -> None:
        raise RuntimeError("listener bug")

    tracker = PipelineProgress([Step("only", 1, "Only")], listener)
    tracker.start("only")  # must not raise
    tracker.finish()
