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
        let s = pass.step(t), B = s.B, H = s.H, G = s.G
        pass.recurrentProduct(P, t, columns: G)
        let bh = P + pass.tensors.bh!
        for b in 0..<B {
            let x = s.gx + b * G, g = s.gh + b * G, a = s.gates + b * G, h0 = s.hp + b * H, h1 = s.hn + b * H
            for j in 0..<G { g[j] += bh[j] }
            for j in 0..<H {
                let rr = activate(s.ga, x[j] + g[j])
                let z = activate(s.ga, x[H + j] + g[H + j])
                let n = activate(s.act, x[2 * H + j] + rr * g[2 * H + j])
                a[j] = rr; a[H + j] = z; a[2 * H + j] = n
                h1[j] = (1 - z) * n + z * h0[j]
            }
        }
    }

    func backwardStep(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ grad: UnsafeMutablePointer<Float>, _ t: Int) {
        let s = pass.step(t), B = s.B, H = s.H, G = s.G, dh = s.dh
        let dght = dgh.p + t * B * G
        for b in 0..<B {
            let g = s.gh + b * G, a = s.gates + b * G, h0 = s.hp + b * H, d = s.dgx + b * G, e = dght + b * G
            for j in 0..<H {
                let dht = s.dout[b * H + j] + dh[b * H + j]
                let rr = a[j], z = a[H + j], n = a[2 * H + j]
                let dan = dht * (1 - z) * derivative(s.act, output: n)
                let dar = dan * g[2 * H + j] * derivative(s.ga, output: rr)
                let daz = dht * (h0[j] - n) * derivative(s.ga, output: z)
                d[j] = dar; d[H + j] = daz; d[2 * H + j] = dan
                e[j] = dar; e[H + j] = daz; e[2 * H + j] = dan * rr
                dh[b * H + j] = dht * z
            }
        }
    }

    /// dh_prev = dh ⊙ z (left by the step) + dgh · U.
    func addRecurrentGradient(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ t: Int, into dh: UnsafeMutablePointer<Float>) {
        pass.gradientThroughU(P, dgh.p + t * pass.B * pass.G, gates: pass.G, beta: 1, into: dh)
    }

    /// dU += dghᵀ · H_prev, db_h += Σ dgh.
    func addRecurrentWeightGradients(_ pass: RecurrentPass, _ grad: UnsafeMutablePointer<Float>, steps T: Int) {
        pass.addStateWeightGradient(dgh.p, rows: pass.G, steps: T, into: grad + pass.tensors.u)
        columnSums(dgh.p, rows: T * pass.B, cols: pass.G, into: grad + pass.tensors.bh!)
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
        precondition(pass.recurrentMask == nil, "recurrent dropout is not trained for the reset-before GRU")
        let s = pass.step(t), B = s.B, H = s.H, G = s.G
        let Un = P + pass.tensors.u + 2 * H * H
        let rh = self.rh.p + t * B * H
        pass.recurrentProduct(P, t, columns: 2 * H)
        for b in 0..<B {
            let x = s.gx + b * G, g = s.gh + b * G, a = s.gates + b * G, h0 = s.hp + b * H
            for j in 0..<H {
                let rr = activate(s.ga, x[j] + g[j])
                a[j] = rr
                a[H + j] = activate(s.ga, x[H + j] + g[H + j])
                rh[b * H + j] = rr * h0[j]
            }
        }
        sgemm(false, true, m: B, n: H, k: H, rh, lda: H, Un, ldb: H, beta: 0, s.gh + 2 * H, ldc: G)
        for b in 0..<B {
            let x = s.gx + b * G, g = s.gh + b * G, a = s.gates + b * G, h0 = s.hp + b * H, h1 = s.hn + b * H
            for j in 0..<H {
                let n = activate(s.act, x[2 * H + j] + g[2 * H + j])
                let z = a[H + j]
                a[2 * H + j] = n
                h1[j] = (1 - z) * n + z * h0[j]
            }
        }
    }

    func backwardStep(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ grad: UnsafeMutablePointer<Float>, _ t: Int) {
        let s = pass.step(t), B = s.B, H = s.H, G = s.G, dh = s.dh
        let Un = P + pass.tensors.u + 2 * H * H
        let rh = drh.p
        for b in 0..<B {
            let a = s.gates + b * G, h0 = s.hp + b * H, d = s.dgx + b * G
            for j in 0..<H {
                let dht = s.dout[b * H + j] + dh[b * H + j]
                let z = a[H + j], n = a[2 * H + j]
                d[2 * H + j] = dht * (1 - z) * derivative(s.act, output: n)
                d[H + j] = dht * (h0[j] - n) * derivative(s.ga, output: z)
                dh[b * H + j] = dht * z
            }
        }
        // d(r ⊙ h_prev) = da_n · U_n
        sgemm(false, false, m: B, n: H, k: H, s.dgx + 2 * H, lda: G, Un, ldb: H, beta: 0, rh, ldc: H)
        for b in 0..<B {
            let a = s.gates + b * G, h0 = s.hp + b * H, d = s.dgx + b * G
            for j in 0..<H {
                let drh = rh[b * H + j], rr = a[j]
                d[j] = drh * h0[j] * derivative(s.ga, output: rr)
                dh[b * H + j] += drh * rr
            }
        }
    }

    /// dh_prev = dh ⊙ z + d(r⊙h) ⊙ r (left by the step) + [da_r, da_z] · U_rz.
    func addRecurrentGradient(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ t: Int, into dh: UnsafeMutablePointer<Float>) {
        pass.gradientThroughU(P, pass.rows(pass.dgx, t), gates: 2 * pass.H, beta: 1, into: dh)
    }

    /// dU_rz += [da_r, da_z]ᵀ · H_prev, dU_n += da_nᵀ · (r ⊙ H_prev).
    func addRecurrentWeightGradients(_ pass: RecurrentPass, _ grad: UnsafeMutablePointer<Float>, steps T: Int) {
        let H = pass.H, u = grad + pass.tensors.u, dgx = pass.dgx.p
        pass.addWeightGradient(dgx, rows: 2 * H, states: pass.hs.p, steps: T, into: u)
        pass.addWeightGradient(dgx + 2 * H, rows: H, states: rh.p, steps: T, into: u + 2 * H * H)
    }
}
