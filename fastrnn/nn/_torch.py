"""Recurrent layers built from PyTorch modules (``RNN.from_torch``, ``LSTM.from_torch``,
``GRU.from_torch``). PyTorch is imported only here, and only when such a call is made."""

import numpy as np

_TORCH_CLASSES = {"RNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "from_torch() needs PyTorch, which is not installed. Install the torch extra: "
            "pip install 'fastrnn[torch]'."
        ) from exc
    return torch


def layer_from_torch(cls, module, **kwargs):
    """A fastrnn layer of class ``cls`` holding the parameters of the PyTorch module ``module``
    (see :meth:`fastrnn.nn.LSTM.from_torch`)."""
    torch = _torch()
    name = cls.__name__
    expected = getattr(torch.nn, _TORCH_CLASSES[name])
    if not isinstance(module, expected):
        raise TypeError(
            f"{name}.from_torch() takes a torch.nn.{name}, got {type(module).__module__}."
            f"{type(module).__qualname__}. Build the fastrnn layer of the module's own kind (a "
            "cell such as torch.nn.LSTMCell is one step of a layer: copy its arrays into a "
            "one-layer fastrnn layer with load_state_dict)."
        )
    if getattr(module, "proj_size", 0):
        raise ValueError(
            f"this torch.nn.LSTM has proj_size={module.proj_size} (a projected hidden state), "
            "which fastrnn's LSTM does not have. Import an LSTM built with proj_size=0."
        )
    options = dict(bidirectional=bool(module.bidirectional), dropout=float(module.dropout))
    if name == "RNN":
        options["nonlinearity"] = module.nonlinearity
    if name == "LSTM" and "forget_bias" not in kwargs:
        options["forget_bias"] = 0.0  # the imported biases are used as they are
    if kwargs.get("skip") is not None:
        raise ValueError(
            f"from_torch() builds a layer that computes what the torch.nn.{name} computes, which "
            f"has no connections between its layers; got skip={kwargs['skip']!r}. Leave skip "
            "out (None).")
    reserved = sorted(set(kwargs) & {"input_size", "hidden_size", "num_layers", "bidirectional",
                                     "nonlinearity"})
    if reserved:
        raise ValueError(f"from_torch() takes the sizes and options {reserved} from the module; "
                         "do not pass them.")
    state = {key: value.detach().cpu().to(torch.float64).numpy()
             for key, value in module.state_dict().items()}
    if "dtype" not in kwargs:  # float64 stays float64; float32, half precision ... give float32
        weight = next(iter(module.parameters()), None)
        kwargs["dtype"] = (np.float64 if weight is not None and weight.dtype == torch.float64
                           else np.float32)
    layer = cls(int(module.input_size), int(module.hidden_size), int(module.num_layers),
                **options, **kwargs)
    for key, value in layer.params.items():
        if key.startswith("bias_") and not module.bias:
            state[key] = np.zeros_like(value)  # fastrnn's layers always have biases: zeros
        elif key.startswith("weight_peephole"):
            state[key] = value  # zero peepholes (peephole=True): PyTorch's LSTM has none
    layer.load_state_dict(state)
    return layer
