"""``quantize`` of the fitted estimators: a copy whose recurrent layer runs in int8 (or bf16)."""

import copy

from sklearn.utils.validation import check_is_fitted

__all__ = ["QuantizeMixin"]


class QuantizeMixin:
    """Adds :meth:`quantize` to an estimator with a fitted ``network_``."""

    def quantize(self, precision="int8"):
        """A copy of the fitted model whose recurrent layer predicts with int8 (or bf16) weights.

        The weights of the recurrent layer are quantised to int8 per output row (symmetric,
        ``scale = max|w_row| / 127``); the input of each step and the state entering each
        recurrent product are quantised per vector when used; the products accumulate in int32
        and the cell's mathematics, the embedding and the output layer stay float32 (see
        :meth:`fastrnn.nn.LSTM.quantize`). Predictions then run on the compiled kernels of the
        Cython backend (AVX-512 VNNI or AVX2 where the CPU has them).

        The estimator itself is left as it is, as scikit-learn's methods other than ``fit``
        leave an estimator: keep it to compare, to fit further or to export. The copy predicts,
        scores, transforms and saves (``save`` stores the int8 weights; :func:`fastrnn.load` and
        :func:`fastrnn.load_predictor` read them back); fitting it again trains a new float32
        network, as ``fit`` does.

        Parameters
        ----------
        precision : {"int8", "bf16"}
            ``"bf16"``: the same weights and activations rounded to bfloat16 instead, the
            products summed in float32 (AVX-512 BF16 where the CPU has it).

        Returns
        -------
        estimator
            The quantised copy.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            The estimator is not fitted.
        ValueError
            Another precision, a float64 model, or a cell without recurrent matrix (``mingru``,
            ``minlstm``, ``indrnn``).
        """
        check_is_fitted(self, "network_")
        twin = copy.deepcopy(self)
        twin.network_.quantize(precision)
        twin.network_.release()
        return twin
