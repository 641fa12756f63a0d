"""Our training step against NVIDIA's, on the demo's network: the same weights, latents, labels and real
images go through each code's loss and networks (Gmain, Dmain and the lazy R1 phase Dreg), then the
same Adam updates, for --steps steps. Results go to docs/collapse.md ("Is the collapse a bug?").

    python bench/nvidia_train_step.py --nvidia=~/src/stylegan3            # a local NVlabs/stylegan3 checkout
    python bench/nvidia_train_step.py --nvidia=~/src/stylegan3 --steps=24 --res=32

Printed: per phase, the largest gradient difference of the first step relative to each tensor's largest
value; then per step how far two probes (the generated images' std, D's mean logit on reals) of our run
and of a run of NVIDIA's code from weights perturbed by --perturb (relative) are from NVIDIA's run. Training a GAN amplifies rounding from step
to step, so after the first steps 'ours' is judged against that perturbed run: a difference of the same
size is float noise, a larger one is a difference in the maths.

Each code runs in its own subprocess (this file with --worker), whose sys.path starts at that code's root,
so NVIDIA's `training`, `torch_utils` and `dnnlib` never meet ours. Nothing of NVIDIA's is in this repository.
"""

import json
import os
import subprocess
import sys
import tempfile

import click
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))) # bench/ only: this file also runs inside NVIDIA's tree.
from nvidia_reference import _stand_in_for_unused_imports, checkout_problem # pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHASES = (('Gmain', 'G', 1), ('Dmain', 'D', 1), ('Dreg', 'D', 4)) # (phase, network, interval in steps)

#----------------------------------------------------------------------------
# The worker: one code's networks and loss, driven by a loop that is the same for both codes.

def _networks(spec):
    from training import networks_stylegan2, networks_stylegan3 # pylint: disable=import-outside-toplevel
    torch.manual_seed(spec['seed'])
    G = networks_stylegan3.Generator(**spec['G_kwargs']).train().requires_grad_(False)
    D = networks_stylegan2.Discriminator(**spec['D_kwargs']).train().requires_grad_(False)
    return G, D

def _perturb_(module, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(1 + scale * torch.randn(p.shape, generator=gen))

def _phase_backward(loss, nvidia, name, real, real_c, z, c, gain):
    if nvidia:
        loss.accumulate_gradients(phase=name, real_img=real, real_c=real_c, gen_z=z, gen_c=c, gain=gain, cur_nimg=0)
    else:
        out = loss.phase_losses(phase=name, real_img=real, real_c=real_c, gen_z=z, gen_c=c, gain=gain, cur_nimg=0)
        sum(out.terms.values()).backward()

def _optimisers(G, D, spec):
    # NVIDIA's SG3 settings; D is lazily regularised every 16 steps in training (lr and betas scaled by
    # 16/17); here its R1 phase runs every 4th step so that a short run exercises it several times.
    r = 16 / 17
    return dict(G=torch.optim.Adam(G.parameters(), lr=spec['glr'], betas=(0.0, 0.99), eps=1e-8),
                D=torch.optim.Adam(D.parameters(), lr=spec['dlr'] * r, betas=(0.0, 0.99 ** r), eps=1e-8))

def run_worker(spec, inputs, nvidia, out_path):
    """K steps of Gmain, Dmain and Dreg on `inputs`; writes first-step gradients and per-step probes."""
    from training import loss as loss_module # pylint: disable=import-outside-toplevel
    torch.set_num_threads(spec['threads'])
    G, D = _networks(spec)
    if spec.get('init') is not None:
        state = torch.load(spec['init'], weights_only=True)
        G.load_state_dict(state['G'])
        D.load_state_dict(state['D'])
    if spec['perturb']:
        _perturb_(G, spec['perturb'], spec['seed'] + 1)
    nets = dict(G=G, D=D)
    opts = _optimisers(G, D, spec)
    loss = loss_module.StyleGAN2Loss(device=torch.device('cpu'), G=G, D=D, r1_gamma=spec['gamma'])
    out = dict(grads=dict(), probes=[], init={name: {k: v.clone() for k, v in net.state_dict().items()} for name, net in nets.items()})
    for k in range(inputs['z'].shape[0]):
        for j, (name, net, interval) in enumerate(PHASES):
            if k % interval:
                continue
            module, opt = nets[net], opts[net]
            module.requires_grad_(True)
            opt.zero_grad(set_to_none=True)
            _phase_backward(loss, nvidia, name, inputs['real'][k], inputs['real_c'][k], inputs['z'][k, j], inputs['c'][k, j], interval)
            module.requires_grad_(False)
            if k == 0:
                out['grads'][name] = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
            opt.step()
        with torch.no_grad():
            img = G(inputs['z'][k, 0], inputs['c'][k, 0], noise_mode='const')
            logits = D(inputs['real'][k], inputs['real_c'][k])
        out['probes'].append((float(img.std()), float(logits.mean())))
    torch.save(out, out_path)

def worker_main(argv):
    root, spec_path, inputs_path, out_path, nvidia = argv
    sys.path.insert(0, root)
    if nvidia == '1':
        _stand_in_for_unused_imports()
    with open(spec_path) as f:
        spec = json.load(f)
    run_worker(spec, torch.load(inputs_path, weights_only=True), nvidia == '1', out_path)

#----------------------------------------------------------------------------
# The parent: inputs, the three runs, the comparison.

def demo_spec(res, threads, seed=0):
    """Network and loss settings of the demo's CPU network (fundus/demo/config.py) at `res` pixels."""
    sys.path.insert(0, ROOT) # Here, not at import: the NVIDIA worker imports this file and must not see our packages.
    from fundus.demo.config import cpu_config # pylint: disable=import-outside-toplevel
    demo = cpu_config()
    G_kwargs = dict(z_dim=demo.z_dim, w_dim=demo.z_dim, c_dim=5, img_resolution=res, img_channels=3, channel_base=demo.cbase,
                    channel_max=demo.cmax, num_layers=demo.num_layers, margin_size=demo.margin_size,
                    mapping_kwargs=dict(num_layers=2), magnitude_ema_beta=0.5 ** (demo.batch / 20e3), num_fp16_res=0, conv_clamp=None)
    D_kwargs = dict(c_dim=5, img_resolution=res, img_channels=3, channel_base=demo.cbase, channel_max=demo.cmax, num_fp16_res=0,
                    conv_clamp=None, block_kwargs=dict(freeze_layers=0), mapping_kwargs={},
                    epilogue_kwargs=dict(mbstd_group_size=min(4, demo.batch)))
    return dict(G_kwargs=G_kwargs, D_kwargs=D_kwargs, batch=demo.batch, gamma=demo.gamma, glr=0.0025, dlr=0.002,
                threads=threads, seed=seed, perturb=0.0, init=None)

def make_inputs(spec, steps, seed=0):
    """Real phantoms (labelled by grade), latents and labels for every phase of every step."""
    from fundus.data import phantom # pylint: disable=import-outside-toplevel
    gen = torch.Generator().manual_seed(seed)
    batch, res, z_dim = spec['batch'], spec['G_kwargs']['img_resolution'], spec['G_kwargs']['z_dim']
    grades = torch.randint(5, [steps, batch], generator=gen)
    images = [[phantom.render(res, grade=int(g), seed=seed * 100003 + k * batch + i)[0] for i, g in enumerate(row)] for k, row in enumerate(grades)]
    real = torch.from_numpy(np.array(images)).permute(0, 1, 4, 2, 3).float() / 127.5 - 1 # [steps, batch, 3, res, res]
    z = torch.randn([steps, len(PHASES), batch, z_dim], generator=gen)
    c = torch.nn.functional.one_hot(torch.randint(5, [steps, len(PHASES), batch], generator=gen), 5).float()
    return dict(real=real, real_c=torch.nn.functional.one_hot(grades, 5).float(), z=z, c=c)

def run_code(root, nvidia, spec, inputs_path, tmp, tag):
    spec_path, out_path = os.path.join(tmp, f'{tag}.json'), os.path.join(tmp, f'{tag}.pt')
    with open(spec_path, 'w') as f:
        json.dump(spec, f)
    cmd = [sys.executable, os.path.abspath(__file__), '--worker', root, spec_path, inputs_path, out_path, '1' if nvidia else '0']
    if subprocess.run(cmd, check=False).returncode != 0:
        raise click.ClickException(f'--nvidia: the {tag} run failed (its output is above)')
    return torch.load(out_path, weights_only=True)

def gradient_rows(a, b):
    """[(phase, tensors compared, worst relative difference, its tensor)] of the first step's gradients."""
    rows = []
    for phase in a['grads']:
        ga, gb = a['grads'][phase], b['grads'].get(phase, {})
        if set(ga) != set(gb):
            raise ValueError(f'{phase}: the two codes give gradients for different parameters: {sorted(set(ga) ^ set(gb))[:4]}')
        worst = max((float((ga[n] - gb[n]).abs().max() / ga[n].abs().max().clamp_min(1e-30)), n) for n in ga)
        rows.append((phase, len(ga), worst[0], worst[1]))
    return rows

def probe_rows(nv, ours, nv_perturbed):
    """Per step: (step, |nv - ours| of image std and logit, |nv - nv_perturbed| of both)."""
    return [(k, abs(a[0] - b[0]), abs(a[1] - b[1]), abs(a[0] - p[0]), abs(a[1] - p[1]))
            for k, (a, b, p) in enumerate(zip(nv['probes'], ours['probes'], nv_perturbed['probes']))]

def compare(nvidia_root, steps, res, threads, perturb, seed=0):
    spec = demo_spec(res, threads, seed)
    with tempfile.TemporaryDirectory() as tmp:
        inputs_path = os.path.join(tmp, 'inputs.pt')
        torch.save(make_inputs(spec, steps, seed), inputs_path)
        nv = run_code(nvidia_root, True, spec, inputs_path, tmp, 'nvidia')
        init_path = os.path.join(tmp, 'init.pt')
        torch.save(nv['init'], init_path) # Their freshly built weights, loaded by the other two runs.
        ours = run_code(ROOT, False, dict(spec, init=init_path), inputs_path, tmp, 'ours')
        nv_p = run_code(nvidia_root, True, dict(spec, init=init_path, perturb=perturb), inputs_path, tmp, 'nvidia-perturbed')
    return gradient_rows(nv, ours), probe_rows(nv, ours, nv_p)

#----------------------------------------------------------------------------

@click.command()
@click.option('--nvidia', help='Local checkout of NVlabs/stylegan3 to compare with', metavar='PATH', required=True)
@click.option('--steps', help='Training steps (Gmain + Dmain each step, Dreg every 4th)', type=click.IntRange(min=1), default=12, show_default=True)
@click.option('--res', help='Image resolution of the demo network', type=click.IntRange(min=16), default=64, show_default=True)
@click.option('--threads', help='torch CPU threads in each run', type=click.IntRange(min=1), default=2, show_default=True)
@click.option('--perturb', help='Relative perturbation of G\'s weights for the float-noise yardstick run', type=float, default=1e-7, show_default=True)
def main(nvidia, steps, res, threads, perturb):
    repo = os.path.expanduser(nvidia)
    problem = checkout_problem(nvidia, ('networks_stylegan3', 'networks_stylegan2', 'loss'))
    if problem:
        raise click.BadParameter(problem, param_hint='--nvidia')
    grads, probes = compare(repo, steps, res, threads, perturb)
    print('| phase | tensors | first-step gradient, largest abs(ours - NVIDIA) / max abs(NVIDIA) | in |')
    print('|---|---:|---:|---|')
    for phase, count, worst, name in grads:
        print(f'| {phase} | {count} | {worst:.1e} | `{name}` |')
    print(f'\n| step | image std: abs(ours - NVIDIA) | abs(NVIDIA perturbed by {perturb:g} - NVIDIA) | D logit on reals: abs(ours - NVIDIA) | abs(NVIDIA perturbed - NVIDIA) |')
    print('|---:|---:|---:|---:|---:|')
    for k, d_img, d_logit, p_img, p_logit in probes:
        print(f'| {k} | {d_img:.1e} | {p_img:.1e} | {d_logit:.1e} | {p_logit:.1e} |')

if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--worker':
        worker_main(sys.argv[2:])
    else:
        main() # pylint: disable=no-value-for-parameter
