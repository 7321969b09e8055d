"""The graph being written: nodes, initialisers, inputs and outputs with unique names, and the
``onnx`` package imported when an export needs it."""

import numpy as np


def _onnx():
    """The ``onnx`` package, or an ImportError that names the extra to install."""
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(
            "fastrnn.onnx.export needs the onnx package, which is not installed. Install the "
            "onnx extra: pip install 'fastrnn[onnx]' (onnx, and onnxruntime to run the model)."
        ) from exc
    return onnx


class _Graph:
    """Nodes, initialisers, inputs and outputs of the graph being written, with unique names."""

    def __init__(self, onnx, opset, dtype):
        self.onnx = onnx
        self.helper = onnx.helper
        self.opset = opset
        self.dtype = np.dtype(dtype)
        self.elem = self.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self._count = 0

    def name(self, hint):
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, array, hint="c"):
        """A constant tensor (an initialiser); returns its name."""
        name = self.name(hint)
        array = np.asarray(array)
        if array.dtype.kind in "OUS":
            values = [v.encode("utf-8") if isinstance(v, str) else bytes(v)
                      for v in array.reshape(-1).tolist()]
            tensor = self.helper.make_tensor(name, self.onnx.TensorProto.STRING, array.shape,
                                             values)
        else:
            tensor = self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name)
        self.inits.append(tensor)
        return name

    def ints(self, values):
        return self.const(np.asarray(values, np.int64), "ints")

    def op(self, op_type, inputs, n_out=1, hint=None, **attrs):
        """Add a node; returns its output's name (a list of names when ``n_out > 1``)."""
        outs = [self.name(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def add_input(self, name, elem, shape):
        self.inputs.append(self.helper.make_tensor_value_info(name, elem, shape))
        return name

    def add_output(self, value, name, elem, shape):
        """Expose ``value`` as the graph output ``name``."""
        self.op("Identity", [value], hint=name)
        self.nodes[-1].output[0] = name
        self.outputs.append(self.helper.make_tensor_value_info(name, elem, shape))

    # ------------------------------------------------------------------ small helpers
    def reduce(self, op_type, x, axes, keepdims=0):
        """``ReduceSum`` / ``ReduceMax`` over ``axes``: an input from the opset where it became one
        (13 for ReduceSum, 18 for the others), an attribute before."""
        since = 13 if op_type == "ReduceSum" else 18
        if self.opset >= since:
            return self.op(op_type, [x, self.ints(axes)], keepdims=keepdims)
        return self.op(op_type, [x], axes=list(axes), keepdims=keepdims)

    def unsqueeze(self, x, axes):
        return self.op("Unsqueeze", [x, self.ints(axes)])

    def squeeze(self, x, axes):
        return self.op("Squeeze", [x, self.ints(axes)])

    def dim(self, x, axis):
        """The size of axis ``axis`` of ``x``, an int64 tensor of shape (1,)."""
        return self.op("Gather", [self.op("Shape", [x]), self.ints([axis])], axis=0)
