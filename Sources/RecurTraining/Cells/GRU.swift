import Recur

// GRU training steps, gate rows r, z, n; h = (1 − z) ⊙ n + z ⊙ h_prev. Backward, for dh = ∂loss/∂h:
//
// Reset after the product (n = act(gx_n + r ⊙ gh_n), gh = U h_prev + b_h):
//     dn = dh ⊙ (1 − z)          dz = dh ⊙ (h_prev − n)      dh_prev = dh ⊙ z + dgh · U
//     da_n = dn ⊙ act'(n)         da_r = da_n ⊙ gh_n ⊙ σ'(r)   da_z = dz ⊙ σ'(z)
//     dgx = [da_r, da_z, da_n]    dgh = [da_r, da_z, r ⊙ da_n]
// Reset before the product (n = act(gx_n + U_n (r ⊙ h_prev))):
//     d(r⊙h) = da_n · U_n         da_r = d(r⊙h) ⊙ h_prev ⊙ σ'(r)
//     dh_prev = dh ⊙ z + d(r⊙h) ⊙ r + [da_r, da_z] · U_rz;  dU_n += da_nᵀ · (r ⊙ h_prev)

/// GRU with the reset gate applied after the recurrent product (PyTorch, cuDNN, Keras `reset_after=True`);
/// it has a recurrent bias b_h.
final class TrainingGRU: TrainingCell {
    /// ∂loss/∂gh of each step. [T·B, G]
    let dgh: FloatBuffer

    init(_ tensors: RecurrentTensors, streams B: Int, steps T: Int, withGradients g: Bool) {
        dgh = FloatBuffer(g ? T * B * tensors.G : 0)
    }

    func forwardStep(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ t: Int) {
        let B = pass.B, H = pass.H, G = pass.G, r = pass.tensors
        let ga = r.spec.recurrentActivation, act = r.spec.activation
        let hp = pass.h(t), hn = pass.h(t + 1)
        let gxt = pass.rows(pass.gx, t), ght = pass.rows(pass.gh, t), at = pass.rows(pass.act, t)
        sgemm(false, true, m: B, n: G, k: H, hp, lda: H, P + r.u, ldb: H, beta: 0, ght, ldc: G)
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
    }

    func backwardStep(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ grad: UnsafeMutablePointer<Float>, _ t: Int) {
        let B = pass.B, H = pass.H, G = pass.G, spec = pass.tensors.spec
        let ga = spec.recurrentActivation, act = spec.activation
        let hp = pass.h(t), dh = pass.dh.p, doutt = pass.dout.p + t * B * H
        let ght = pass.rows(pass.gh, t), at = pass.rows(pass.act, t), dgxt = pass.rows(pass.dgx, t), dght = dgh.p + t * B * G
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
    }

    func addRecurrentGradient(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ t: Int, into dh: UnsafeMutablePointer<Float>) {
        let G = pass.G, H = pass.H
        sgemm(false, false, m: pass.B, n: H, k: G, dgh.p + t * pass.B * G, lda: G, P + pass.tensors.u, ldb: H, beta: 1, dh, ldc: H)
    }

    func addRecurrentWeightGradients(_ pass: RecurrentPass, _ grad: UnsafeMutablePointer<Float>, steps T: Int) {
        let G = pass.G, H = pass.H, TB = T * pass.B, r = pass.tensors
        sgemm(true, false, m: G, n: H, k: TB, dgh.p, lda: G, pass.hs.p, ldb: H, beta: 1, grad + r.u, ldc: H)
        columnSums(dgh.p, rows: TB, cols: G, into: grad + r.bh!)
    }
}

/// GRU with the reset gate applied to h_prev before the recurrent product (Keras `reset_after=False`, the
/// original paper); no recurrent bias.
final class TrainingGRUResetBefore: TrainingCell {
    /// r ⊙ h_prev of each step. [T·B, H]
    let rh: FloatBuffer
    /// d(r ⊙ h_prev) of the step being differentiated. [B, H]
    let drh: FloatBuffer

    init(_ tensors: RecurrentTensors, streams B: Int, steps T: Int, withGradients g: Bool) {
        rh = FloatBuffer(T * B * tensors.H)
        drh = FloatBuffer(B * tensors.H)
    }

    func forwardStep(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ t: Int) {
        let B = pass.B, H = pass.H, G = pass.G, r = pass.tensors
        let ga = r.spec.recurrentActivation, act = r.spec.activation
        let U = P + r.u
        let hp = pass.h(t), hn = pass.h(t + 1)
        let gxt = pass.rows(pass.gx, t), ght = pass.rows(pass.gh, t), at = pass.rows(pass.act, t)
        let rh = self.rh.p + t * B * H
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
    }

    func backwardStep(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ grad: UnsafeMutablePointer<Float>, _ t: Int) {
        let B = pass.B, H = pass.H, G = pass.G, spec = pass.tensors.spec
        let ga = spec.recurrentActivation, act = spec.activation
        let U = P + pass.tensors.u
        let hp = pass.h(t), dh = pass.dh.p, doutt = pass.dout.p + t * B * H
        let at = pass.rows(pass.act, t), dgxt = pass.rows(pass.dgx, t)
        let rh = drh.p
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
    }

    func addRecurrentGradient(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ t: Int, into dh: UnsafeMutablePointer<Float>) {
        let G = pass.G, H = pass.H
        sgemm(false, false, m: pass.B, n: H, k: 2 * H, pass.rows(pass.dgx, t), lda: G, P + pass.tensors.u, ldb: H,
              beta: 1, dh, ldc: H)
    }

    func addRecurrentWeightGradients(_ pass: RecurrentPass, _ grad: UnsafeMutablePointer<Float>, steps T: Int) {
        let G = pass.G, H = pass.H, TB = T * pass.B, u = pass.tensors.u
        let dgx = pass.dgx.p
        sgemm(true, false, m: 2 * H, n: H, k: TB, dgx, lda: G, pass.hs.p, ldb: H, beta: 1, grad + u, ldc: H)
        sgemm(true, false, m: H, n: H, k: TB, dgx + 2 * H, lda: G, rh.p, ldb: H, beta: 1, grad + u + 2 * H * H, ldc: H)
    }
}
