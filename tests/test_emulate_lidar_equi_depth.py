"""Equi-depth histograms: their edges are the detections' quantiles, and with 16 bins they locate the return
far better than 16 equi-width bins do from the same photons."""

from __future__ import annotations

import numpy as np

from camsim.emulate import lidar_histogram as hist
from camsim.emulate import lidar_transient as tra
from camsim.emulate.lidar_config import LidarConfig
from camsim.emulate.lidar_model import detections, histogram_and_estimate, photon_model

MAX_RANGE = 800 * 250e-12 * tra.C_LIGHT / 2  # 800 TDC bins: a multiple of 16, so both see the same gate


def test_equi_depth_beats_equi_width_with_16_bins_on_the_same_photons():
    width = LidarConfig(histogram="equi-width", bins=16, max_range=MAX_RANGE, seed=3)
    depth = LidarConfig(histogram="equi-depth", bins=16, max_range=MAX_RANGE, seed=3)
    assert width.tdc_bins == depth.tdc_bins == 800
    rho = np.random.default_rng(0).uniform(2.0, 15.0, 1500)
    tr = photon_model(width, rho, np.full(rho.shape, 0.5), np.full(rho.shape, 0.3))
    pix, ticks, _ = detections(width, tr, np.random.default_rng(1))  # one draw, both histogrammers
    errors = {}
    for cfg in (width, depth):
        _, t, found = histogram_and_estimate(cfg, pix, ticks, len(rho))
        assert found.min() > 0
        errors[cfg.histogram] = np.abs(t * cfg.bin_width * tra.C_LIGHT / 2 - rho)
    bin_range = 800 / 16 * 250e-12 * tra.C_LIGHT / 2  # 1.87 m
    assert np.median(errors["equi-width"]) > 0.15 * bin_range  # it cannot see inside its bins
    assert np.median(errors["equi-depth"]) < 0.2 * np.median(errors["equi-width"])
    assert np.mean(errors["equi-depth"]) < 0.5 * np.mean(errors["equi-width"])


def test_equi_depth_edges_are_the_detections_quantiles():
    rng = np.random.default_rng(4)
    pix = np.sort(rng.integers(0, 30, 2000))
    ticks = rng.integers(0, 500, 2000)
    edges, found = hist.equi_depth(pix, ticks, 31, 500, 8)  # pixel 30 detects nothing
    assert found[30] == 0 and edges[30].tolist() == [0] * 8 + [500]
    for p in range(30):
        mine = np.sort(ticks[pix == p])
        d = len(mine)
        assert found[p] == d and edges[p, 0] == 0 and edges[p, 8] == 500
        for k in range(1, 8):
            assert edges[p, k] == mine[(k * d) // 8]  # bin k starts at the detection of rank floor(k D / B)
        counts = hist.equi_depth_counts(found[p : p + 1], 8)[0]
        assert counts.sum() == d and counts.max() - counts.min() <= 1


def test_densest_bin_is_the_narrowest_without_pile_up_correction():
    edges = np.array([[0, 10, 30, 31, 33, 60, 100]])  # 6 bins, the third one tick wide
    counts = hist.equi_depth_counts(np.array([60]), 6)
    assert hist.densest_bin(counts, edges)[0] == 30.5


def test_equi_width_counts_and_their_coates_rates_match_a_dense_count():
    rng = np.random.default_rng(5)
    for d, bins in ((0, 16), (7, 64), (3000, 16), (3000, 64)):  # sorted and counted paths, empty pixels
        pix = np.sort(rng.integers(0, 50, d))
        ticks = rng.integers(0, 64, d)
        dense = np.zeros((50, bins), np.int64)
        np.add.at(dense, (pix, ticks // (64 // bins)), 1)
        sparse = hist.equi_width(pix, ticks, 50, 64, bins)
        np.testing.assert_array_equal(sparse.dense(), dense)
        np.testing.assert_array_equal(sparse.detections(), dense.sum(axis=1))
        np.testing.assert_array_equal(sparse.dense(hist.coates_sparse(sparse, 500), np.float64),
                                      hist.coates(dense, 500))  # fmt: skip
