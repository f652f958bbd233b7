import Recur

// Forward and backward passes of the recurrent cells over a window, for B streams at once.
// The equations are those of the runtime's cells (Sources/Recur/Cells); the names below follow them:
// gx = W x + b (input side), gh = U h (+ b_h) (recurrent side), gates stored after activation.
//
// Backward, for a gradient dh of the loss with respect to h_t (from the layer above plus from step t+1):
//
// GRU, reset after (r, z, n; n = act(gx_n + r ⊙ gh_n)):
//     dn = dh ⊙ (1 − z)          dz = dh ⊙ (h_prev − n)      dh_prev = dh ⊙ z + dgh · U
//     da_n = dn ⊙ act'(n)         da_r = da_n ⊙ gh_n ⊙ σ'(r)   da_z = dz ⊙ σ'(z)
//     dgx = [da_r, da_z, da_n]    dgh = [da_r, da_z, r ⊙ da_n]
// GRU, reset before (n = act(gx_n + U_n (r ⊙ h_prev))):
//     d(r⊙h) = da_n · U_n         da_r = d(r⊙h) ⊙ h_prev ⊙ σ'(r)
//     dh_prev = dh ⊙ z + d(r⊙h) ⊙ r + [da_r, da_z] · U_rz;  dU_n += da_nᵀ · (r ⊙ h_prev)
// LSTM (i, f, g, o; peepholes P_i, P_f on c_prev and P_o on c):
//     dc = dc_next + dh ⊙ o ⊙ act'(act(c)) + da_o ⊙ P_o       da_o = dh ⊙ act(c) ⊙ σ'(o)
//     da_i = dc ⊙ g ⊙ σ'(i)   da_f = dc ⊙ c_prev ⊙ σ'(f)   da_g = dc ⊙ i ⊙ act'(g)
//     dc_prev = dc ⊙ f + da_i ⊙ P_i + da_f ⊙ P_f            dh_prev = dgx · U
// SimpleRNN: da = dh ⊙ act'(h),  dh_prev = da · U.
// Weight gradients of the window: dW += dgxᵀ · X, db += Σ dgx, dU += dghᵀ · H_prev (dgh = dgx except
// GRU reset-after), db_h += Σ dgh; and dX = dgx · W for the layer below.

extension Network {
    /// Forward pass of recurrent layer `l` over `T` steps of `ws`, from its carried state.
    /// `mask` [T·B] (optional): 0 marks a PAD step, whose state is carried over unchanged (the step's output
    /// repeats the previous one), as the runtime's whole-sequence inference does.
    func recurrentForward(_ l: Int, _ ws: Workspace, steps T: Int, input X: UnsafePointer<Float>,
                          mask: UnsafePointer<Float>? = nil) {
        let r = plan.rec[l]
        let B = ws.B, H = r.H, G = r.G, In = r.In, TB = T * B
        let P = UnsafePointer(params.p)
        let W = P + r.w, U = P + r.u, bias = P + r.b
        let gx = ws.gx[l].p, gh = ws.gh[l].p, a = ws.act[l].p, hs = ws.hs[l].p
        let ga = r.spec.recurrentActivation, act = r.spec.activation
        // GX [T·B, G] = X · Wᵀ + b
        for i in 0..<TB { (gx + i * G).update(from: bias, count: G) }
        sgemm(false, true, m: TB, n: G, k: In, X, lda: In, W, ldb: In, beta: 1, gx, ldc: G)
        hs.update(from: ws.carryH[l].p, count: B * H)
        if let c = ws.cs[l] { c.p.update(from: ws.carryC[l]!.p, count: B * H) }

        for t in 0..<T {
            let hp = hs + t * B * H, hn = hs + (t + 1) * B * H
            let gxt = gx + t * B * G, ght = gh + t * B * G, at = a + t * B * G
            switch r.spec.cell {
            case .gru where r.spec.resetAfter:
                sgemm(false, true, m: B, n: G, k: H, hp, lda: H, U, ldb: H, beta: 0, ght, ldc: G)
                let bh = P + r.bh!
                for b in 0..<B {
                    let x = gxt + b * G, g = ght + b * G, s = at + b * G, h0 = hp + b * H, h1 = hn + b * H
                    for j in 0..<G { g[j] += bh[j] }
                    for j in 0..<H {
                        let rr = activate(ga, x[j] + g[j])
                        let z = activate(ga, x[H + j] + g[H + j])
                        let n = activate(act, x[2 * H + j] + rr * g[2 * H + j])
                        s[j] = rr; s[H + j] = z; s[2 * H + j] = n
                        h1[j] = (1 - z) * n + z * h0[j]
                    }
                }
            case .gru:
                let rh = ws.rh[l]!.p + t * B * H
                sgemm(false, true, m: B, n: 2 * H, k: H, hp, lda: H, U, ldb: H, beta: 0, ght, ldc: G)
                for b in 0..<B {
                    let x = gxt + b * G, g = ght + b * G, s = at + b * G, h0 = hp + b * H
                    for j in 0..<H {
                        let rr = activate(ga, x[j] + g[j])
                        s[j] = rr
                        s[H + j] = activate(ga, x[H + j] + g[H + j])
                        rh[b * H + j] = rr * h0[j]
                    }
                }
                sgemm(false, true, m: B, n: H, k: H, rh, lda: H, U + 2 * H * H, ldb: H, beta: 0, ght + 2 * H, ldc: G)
                for b in 0..<B {
                    let x = gxt + b * G, g = ght + b * G, s = at + b * G, h0 = hp + b * H, h1 = hn + b * H
                    for j in 0..<H {
                        let n = activate(act, x[2 * H + j] + g[2 * H + j])
                        let z = s[H + j]
                        s[2 * H + j] = n
                        h1[j] = (1 - z) * n + z * h0[j]
                    }
                }
            case .lstm:
                sgemm(false, true, m: B, n: G, k: H, hp, lda: H, U, ldb: H, beta: 0, ght, ldc: G)
                let cs = ws.cs[l]!.p
                let peep = r.peep.map { P + $0 }
                for b in 0..<B {
                    let x = gxt + b * G, g = ght + b * G, s = at + b * G, h1 = hn + b * H
                    let c0 = cs + t * B * H + b * H, c1 = cs + (t + 1) * B * H + b * H
                    if let p = peep {
                        for k in 0..<H {
                            let i = activate(ga, x[k] + g[k] + p[k] * c0[k])
                            let f = activate(ga, x[H + k] + g[H + k] + p[H + k] * c0[k])
                            let cand = activate(act, x[2 * H + k] + g[2 * H + k])
                            let cn = f * c0[k] + i * cand
                            let o = activate(ga, x[3 * H + k] + g[3 * H + k] + p[2 * H + k] * cn)
                            s[k] = i; s[H + k] = f; s[2 * H + k] = cand; s[3 * H + k] = o
                            c1[k] = cn
                            h1[k] = o * activate(act, cn)
                        }
                    } else {
                        for k in 0..<H {
                            let i = activate(ga, x[k] + g[k])
                            let f = activate(ga, x[H + k] + g[H + k])
                            let cand = activate(act, x[2 * H + k] + g[2 * H + k])
                            let o = activate(ga, x[3 * H + k] + g[3 * H + k])
                            let cn = f * c0[k] + i * cand
                            s[k] = i; s[H + k] = f; s[2 * H + k] = cand; s[3 * H + k] = o
                            c1[k] = cn
                            h1[k] = o * activate(act, cn)
                        }
                    }
                }
            case .rnn:
                sgemm(false, true, m: B, n: H, k: H, hp, lda: H, U, ldb: H, beta: 0, ght, ldc: G)
                for i in 0..<(B * H) {
                    hn[i] = activate(act, gxt[i] + ght[i])
                }
            }
            if let m = mask {
                for b in 0..<B where m[t * B + b] == 0 {
                    (hn + b * H).update(from: hp + b * H, count: H)
                    if let c = ws.cs[l] { (c.p + (t + 1) * B * H + b * H).update(from: c.p + t * B * H + b * H, count: H) }
                }
            }
        }
        ws.carryH[l].p.update(from: hs + T * B * H, count: B * H)
        if let c = ws.cs[l] { ws.carryC[l]!.p.update(from: c.p + T * B * H, count: B * H) }
    }

    /// Backward pass of recurrent layer `l` (after `recurrentForward` on the same window). Reads the
    /// gradient with respect to the layer's outputs from `ws.dout[l]`, adds the weight gradients to
    /// `ws.grads` and writes the gradient with respect to the layer's input X into `dx` [T·B, In].
    /// Gradients stop at the window's initial state (truncated backpropagation through time).
    /// With a `mask` (as given to `recurrentForward`), a PAD step passes the gradients of h (and c) through
    /// to the step before and contributes nothing to the weights.
    func recurrentBackward(_ l: Int, _ ws: Workspace, steps T: Int, input X: UnsafePointer<Float>,
                           dx: UnsafeMutablePointer<Float>, mask: UnsafePointer<Float>? = nil) {
        let r = plan.rec[l]
        let B = ws.B, H = r.H, G = r.G, In = r.In, TB = T * B
        let P = UnsafePointer(params.p), grad = ws.grads.p
        let W = P + r.w, U = P + r.u
        let gh = ws.gh[l].p, a = ws.act[l].p, hs = ws.hs[l].p
        let dgx = ws.dgx[l].p, dout = ws.dout[l].p
        let dh = ws.dhRun.p, dc = ws.dcRun.p
        let ga = r.spec.recurrentActivation, act = r.spec.activation
        dh.update(repeating: 0, count: B * H)
        dc.update(repeating: 0, count: B * H)
        var keepH = [Float](repeating: 0, count: mask == nil ? 0 : B * H), keepC = keepH

        for t in stride(from: T - 1, through: 0, by: -1) {
            let hp = hs + t * B * H, hn = hs + (t + 1) * B * H
            let ght = gh + t * B * G, at = a + t * B * G, dgxt = dgx + t * B * G, doutt = dout + t * B * H
            if let m = mask {
                // A PAD step: keep the gradients to pass through, and run the cell's backward on zeros.
                for b in 0..<B where m[t * B + b] == 0 {
                    for j in 0..<H {
                        keepH[b * H + j] = doutt[b * H + j] + dh[b * H + j]; dh[b * H + j] = -doutt[b * H + j]
                        keepC[b * H + j] = dc[b * H + j]; dc[b * H + j] = 0
                    }
                }
            }
            switch r.spec.cell {
            case .gru where r.spec.resetAfter:
                let dght = ws.dgh[l].p + t * B * G
                for b in 0..<B {
                    let g = ght + b * G, s = at + b * G, h0 = hp + b * H, d = dgxt + b * G, e = dght + b * G
                    for j in 0..<H {
                        let dht = doutt[b * H + j] + dh[b * H + j]
                        let rr = s[j], z = s[H + j], n = s[2 * H + j]
                        let dan = dht * (1 - z) * derivative(act, output: n)
                        let dar = dan * g[2 * H + j] * derivative(ga, output: rr)
                        let daz = dht * (h0[j] - n) * derivative(ga, output: z)
                        d[j] = dar; d[H + j] = daz; d[2 * H + j] = dan
                        e[j] = dar; e[H + j] = daz; e[2 * H + j] = dan * rr
                        dh[b * H + j] = dht * z
                    }
                }
                if t > 0 { sgemm(false, false, m: B, n: H, k: G, dght, lda: G, U, ldb: H, beta: 1, dh, ldc: H) }
            case .gru:
                let rh = ws.drh.p
                for b in 0..<B {
                    let s = at + b * G, h0 = hp + b * H, d = dgxt + b * G
                    for j in 0..<H {
                        let dht = doutt[b * H + j] + dh[b * H + j]
                        let z = s[H + j], n = s[2 * H + j]
                        d[2 * H + j] = dht * (1 - z) * derivative(act, output: n)
                        d[H + j] = dht * (h0[j] - n) * derivative(ga, output: z)
                        dh[b * H + j] = dht * z
                    }
                }
                // d(r ⊙ h_prev) = da_n · U_n
                sgemm(false, false, m: B, n: H, k: H, dgxt + 2 * H, lda: G, U + 2 * H * H, ldb: H, beta: 0, rh, ldc: H)
                for b in 0..<B {
                    let s = at + b * G, h0 = hp + b * H, d = dgxt + b * G
                    for j in 0..<H {
                        let drh = rh[b * H + j], rr = s[j]
                        d[j] = drh * h0[j] * derivative(ga, output: rr)
                        dh[b * H + j] += drh * rr
                    }
                }
                if t > 0 { sgemm(false, false, m: B, n: H, k: 2 * H, dgxt, lda: G, U, ldb: H, beta: 1, dh, ldc: H) }
            case .lstm:
                let cs = ws.cs[l]!.p
                let peep = r.peep.map { P + $0 }
                let gp = r.peep.map { grad + $0 }
                for b in 0..<B {
                    let s = at + b * G, d = dgxt + b * G
                    let c0 = cs + t * B * H + b * H, c1 = cs + (t + 1) * B * H + b * H
                    for k in 0..<H {
                        let dht = doutt[b * H + k] + dh[b * H + k]
                        let i = s[k], f = s[H + k], cand = s[2 * H + k], o = s[3 * H + k]
                        let tc = activate(act, c1[k])
                        let dao = dht * tc * derivative(ga, output: o)
                        var dcn = dc[b * H + k] + dht * o * derivative(act, output: tc)
                        if let p = peep { dcn += dao * p[2 * H + k]; gp![2 * H + k] += dao * c1[k] }
                        let dai = dcn * cand * derivative(ga, output: i)
                        let daf = dcn * c0[k] * derivative(ga, output: f)
                        let dag = dcn * i * derivative(act, output: cand)
                        var dcp = dcn * f
                        if let p = peep {
                            dcp += dai * p[k] + daf * p[H + k]
                            gp![k] += dai * c0[k]
                            gp![H + k] += daf * c0[k]
                        }
                        d[k] = dai; d[H + k] = daf; d[2 * H + k] = dag; d[3 * H + k] = dao
                        dc[b * H + k] = dcp
                    }
                }
                if t > 0 { sgemm(false, false, m: B, n: H, k: G, dgxt, lda: G, U, ldb: H, beta: 0, dh, ldc: H) }
            case .rnn:
                for i in 0..<(B * H) {
                    dgxt[i] = (doutt[i] + dh[i]) * derivative(act, output: hn[i])
                }
                if t > 0 { sgemm(false, false, m: B, n: H, k: H, dgxt, lda: G, U, ldb: H, beta: 0, dh, ldc: H) }
            }
            if let m = mask {
                for b in 0..<B where m[t * B + b] == 0 {
                    for j in 0..<H { dh[b * H + j] = keepH[b * H + j]; dc[b * H + j] = keepC[b * H + j] }
                }
            }
        }

        // Weight gradients of the window.
        sgemm(true, false, m: G, n: In, k: TB, dgx, lda: G, X, ldb: In, beta: 1, grad + r.w, ldc: In)
        columnSums(dgx, rows: TB, cols: G, into: grad + r.b)
        switch r.spec.cell {
        case .gru where r.spec.resetAfter:
            let dgh = ws.dgh[l].p
            sgemm(true, false, m: G, n: H, k: TB, dgh, lda: G, hs, ldb: H, beta: 1, grad + r.u, ldc: H)
            columnSums(dgh, rows: TB, cols: G, into: grad + r.bh!)
        case .gru:
            sgemm(true, false, m: 2 * H, n: H, k: TB, dgx, lda: G, hs, ldb: H, beta: 1, grad + r.u, ldc: H)
            sgemm(true, false, m: H, n: H, k: TB, dgx + 2 * H, lda: G, ws.rh[l]!.p, ldb: H, beta: 1,
                  grad + r.u + 2 * H * H, ldc: H)
        case .lstm, .rnn:
            sgemm(true, false, m: G, n: H, k: TB, dgx, lda: G, hs, ldb: H, beta: 1, grad + r.u, ldc: H)
        }
        // dX = dGX · W
        sgemm(false, false, m: TB, n: In, k: G, dgx, lda: G, W, ldb: In, beta: 0, dx, ldc: In)
    }
}
