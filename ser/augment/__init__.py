"""Data augmentation and corruption of audio: additive noise at a given SNR, speed perturbation."""
from ser.augment.noise import add_noise, draw_offset, loop_excerpt, measure_snr, mix_at_snr
from ser.augment.speed import parse_lazy_entry, speed_perturb

__all__ = ["add_noise", "draw_offset", "loop_excerpt", "measure_snr", "mix_at_snr", "parse_lazy_entry",
           "speed_perturb"]
