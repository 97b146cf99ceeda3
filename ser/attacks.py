"""White-box adversarial attacks on feature segments (Latif et al. 2020, 5.3: FGSM and BIM, eps 0.08).

Both work on NORMALISED feature segments (batch, frames, dim), the model's actual input: eps is
in units of the per-dimension training standard deviation (the model's cmvn), and the result is
not clipped to any data range, since normalised features have none.

- FGSM (Goodfellow et al. 2015): x_adv = x + eps·sign(∇_x CE(model(x), y)).
- BIM (Kurakin et al. 2017): x_0 = x, x_{k+1} = clip_{x,eps}(x_k + alpha·sign(∇_x CE(model(x_k), y))),
  an L∞ projection onto the eps-ball around x after every step.

The model is put in eval mode for the attack (BatchNorm running statistics, no dropout: each
example is attacked independently of the others in its batch) and its previous mode restored.
Gradients are taken with torch.autograd.grad with respect to the input only, so nothing is
accumulated in the parameters' .grad. An optional `mask` (broadcastable to x, 1 = may be changed)
limits the perturbation, e.g. to the real frames of a zero-padded segment.
"""
import contextlib

import torch
import torch.nn.functional as F

from ser.errors import SerError


@contextlib.contextmanager
def _eval_mode(model, device):
    was_training = model.training
    model.eval()
    # cuDNN's RNN backward refuses to run in eval mode; the native kernels compute the same thing.
    flags = torch.backends.cudnn.flags(enabled=False) if device.type == "cuda" else contextlib.nullcontext()
    try:
        with flags:
            yield
    finally:
        model.train(was_training)


def _check(x, y, eps):
    if not torch.is_tensor(x) or x.dim() != 3:
        raise SerError(f"attack: x must be a (batch, frames, dim) tensor, got {getattr(x, 'shape', type(x))}")
    if not torch.is_tensor(y) or y.shape != (x.shape[0],):
        raise SerError(f"attack: y must be a ({x.shape[0]},) tensor of class indices, got {getattr(y, 'shape', y)}")
    if not eps >= 0:
        raise SerError(f"attack: eps must be >= 0, got {eps}")


def loss_gradient_sign(model, x, y):
    """sign(∇_x CE(model(x), y)) with the loss summed over the batch (each example's own gradient)."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad.sign()


def fgsm(model, x, y, eps, mask=None):
    """Fast Gradient Sign Method: x + eps·sign(∇_x CE(model(x), y)) (detached tensor like x)."""
    _check(x, y, eps)
    with _eval_mode(model, x.device):
        step = loss_gradient_sign(model, x, y)
    if mask is not None:
        step = step * mask
    return (x.detach() + eps * step).detach()


def bim(model, x, y, eps, alpha=0.01, steps=10, mask=None):
    """Basic Iterative Method: `steps` FGSM steps of size `alpha`, each projected onto the
    L∞ ball of radius `eps` around x."""
    _check(x, y, eps)
    if not alpha > 0 or int(steps) < 1:
        raise SerError(f"bim: alpha must be > 0 and steps >= 1, got alpha={alpha}, steps={steps}")
    x0 = x.detach()
    x_adv = x0.clone()
    with _eval_mode(model, x.device):
        for _ in range(int(steps)):
            step = loss_gradient_sign(model, x_adv, y)
            if mask is not None:
                step = step * mask
            x_adv = torch.max(torch.min(x_adv + alpha * step, x0 + eps), x0 - eps).detach()
    return x_adv


ATTACKS = {"fgsm": fgsm, "bim": bim}
