import torch

from lqcdml.nn import phi4_flow
from lqcdml.theories import Phi4Action
from lqcdml.train import FlowTrainer


def _trainer(seed=0, steps=150):
    torch.manual_seed(seed)
    model = phi4_flow((4, 4), n_layers=4, hidden=(8,)).double()
    return FlowTrainer(model, Phi4Action(m2=-4.0, lam=8.0).action, steps=steps, batch=32, lr=3e-3, seed=seed)


def test_reverse_kl_training_lowers_the_loss_and_raises_the_ess():
    tr = _trainer()
    for _ in range(150):
        tr.step()
    loss, ess = tr.history["loss"], tr.history["ess"]
    assert sum(loss[-20:]) / 20 < sum(loss[:20]) / 20 - 5.0
    assert sum(ess[-20:]) / 20 > 2 * sum(ess[:20]) / 20
    assert tr.history["lr"][-1] < 0.1 * tr.history["lr"][0]  # cosine schedule


def test_training_resumes_bit_for_bit_from_its_state():
    straight = _trainer(steps=20)
    for _ in range(20):
        straight.step()
    first = _trainer(steps=20)
    for _ in range(8):
        first.step()
    saved = first.state_dict()
    resumed = _trainer(seed=5, steps=20)  # different initial weights and generator
    resumed.load_state_dict(saved)
    for _ in range(12):
        resumed.step()
    assert resumed.history == straight.history
    for a, b in zip(resumed.model.parameters(), straight.model.parameters()):
        assert torch.equal(a, b)
