"""The linear part of a classifier of token ids: a logistic regression on the TF-IDF bag of each
sequence's tokens, fitted by scikit-learn and added to the network's logits."""

import numpy as np

__all__ = ["LINEAR_C", "token_counts", "fit_linear_part"]

#: inverse regularisation strength of the linear part's logistic regression
LINEAR_C = 10.0


def token_counts(seqs, vocab_size):
    """How often each id occurs in each sequence (the first id of a step when it holds several).

    Parameters
    ----------
    seqs : list of int ndarray of shape (T_i,) or (T_i, K)
    vocab_size : int

    Returns
    -------
    counts : scipy.sparse.csr_matrix of shape (n_sequences, vocab_size)
        The padding id 0 is not counted.
    """
    import scipy.sparse as sp

    words = [np.asarray(s)[:, 0] if np.ndim(s) == 2 else np.asarray(s) for s in seqs]
    rows = np.repeat(np.arange(len(words)), [len(w) for w in words])
    cols = np.concatenate(words).astype(np.int64) if words else np.zeros(0, np.int64)
    keep = cols > 0
    counts = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])),
                           shape=(len(words), int(vocab_size)))
    counts.sum_duplicates()
    return counts


def fit_linear_part(net, seqs, codes, n_classes, sample_weight=None, C=LINEAR_C):
    """Fit the linear part of ``net`` (built with ``linear=True``) on the training sequences.

    The TF-IDF features are those of :class:`sklearn.feature_extraction.text.TfidfTransformer`
    (``sublinear_tf=True``: ``1 + log(count)``; smoothed idf, L2 norm) on the ids' counts; ids
    that no training sequence holds get an idf of 0, so that at prediction they neither add a
    feature nor change the norm (as ``TfidfVectorizer`` ignores words it did not see). A
    :class:`~sklearn.linear_model.LogisticRegression` (``C``) on these features gives the
    weights: with two classes its coefficients become the second class's logit.

    Parameters
    ----------
    net : SequenceNetwork
    seqs : list of int ndarray of shape (T_i,) or (T_i, K)
    codes : int ndarray of shape (n_sequences,)
        Class indices in ``[0, n_classes)``.
    n_classes : int
    sample_weight : ndarray of shape (n_sequences,) or None
    C : float

    Returns
    -------
    lr : LogisticRegression
        The fitted model, on the columns of all ids.
    """
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LogisticRegression

    V = net.linear.params["idf"].shape[0]
    counts = token_counts(seqs, V)
    tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
    seen = np.asarray((counts > 0).sum(axis=0)).ravel() > 0
    lr = LogisticRegression(C=C, max_iter=5000)
    lr.fit(tfidf.transform(counts), codes, sample_weight=sample_weight)
    weight = np.zeros((V, n_classes))
    bias = np.zeros(n_classes)
    present = lr.classes_.astype(np.int64)
    if len(present) == 2:
        weight[:, present[1]] = lr.coef_[0]
        bias[present[1]] = lr.intercept_[0]
    else:
        weight[:, present] = lr.coef_.T
        bias[present] = lr.intercept_
    net.set_linear(np.where(seen, tfidf.idf_, 0.0), weight, bias)
    return lr
