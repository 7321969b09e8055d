/* The recurrence of one direction of one layer over one sequence, compiled once per instruction
 * set level: fastrnn/_cy/_infer.h includes this file three times, with FR_NAME (the suffix of the
 * function names) and FR_TARGET (the target attribute, empty for portable C) set. The cell rows
 * of _infer.h are inlined here, so their loops are vectorised for this level. */

/* ``xp`` (L, G) holds the input projections with their biases (b_hh too, but for the GRU that
 * applies the reset gate after the product). Step t's state is written to out + t * ld_out, the
 * final state to hn (and cn). ws: 11 H + G floats of scratch. */
FR_TARGET static void FR_NAME(fr_recur)(const fr_spec *s, int d, const float *xp,
                                        const fr_mat *hh, const fr_mat *hhn, const float *b_hh,
                                        const float *peep, float *out, fr_idx ld_out,
                                        const float *h0, const float *c0, float *hn, float *cn,
                                        float *ws, int8_t *qbuf, int32_t *acc)
{
    fr_idx L = s->L, H = s->H, G = s->G, t, st, j;
    float *a = ws, *an = a + G, *act = an + H, *rh = act + 4 * H, *c = rh + H, *zeros = c + 2 * H;
    const float *hp = h0, *cp = c0, *row;
    float *hout, *cnew;
    if (s->kind == FR_LSTM && peep == NULL) {
        memset(zeros, 0, (size_t)(3 * H) * sizeof(float));
        peep = zeros;
    }
    for (st = 0; st < L; st++) {
        t = d == 0 ? st : L - 1 - st;
        row = xp + t * G;
        hout = out + t * ld_out;
        fr_matvec(hh, hp, a, qbuf, acc);
        switch (s->kind) {
        case FR_RNN:
            for (j = 0; j < H; j++)
                hout[j] = fr_rnn_act(row[j] + a[j], s->relu);
            break;
        case FR_LSTM:
            cnew = c + (st & 1) * H;
            fr_lstm_row(H, row, a, cp, peep, peep + H, peep + 2 * H, s->on_i, s->on_f, s->on_o,
                        act, cnew, hout);
            cp = cnew;
            break;
        case FR_GRU:
            fr_gru_row(H, row, a, b_hh, hp, act, hout);
            break;
        default:
            fr_gru_v1_gates_row(H, row, a, hp, act, rh);
            fr_matvec(hhn, rh, an, qbuf, acc);
            fr_gru_v1_out_row(H, row, an, hp, act, hout);
        }
        hp = hout;
    }
    memcpy(hn, hp, (size_t)H * sizeof(float));
    if (s->kind == FR_LSTM)
        memcpy(cn, cp, (size_t)H * sizeof(float));
}

/* The int8 product of the recurrence (quantise, integer products, dequantise), for the tests. */
FR_TARGET static void FR_NAME(fr_qmatvec)(const fr_mat *m, const float *x, float *y,
                                          int8_t *qbuf, int32_t *acc)
{
    fr_matvec(m, x, y, qbuf, acc);
}
