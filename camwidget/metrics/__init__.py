"""Can this map be trusted? Faithfulness scores and sanity checks for saliency maps.

Every function takes the model, images in its input space (N, H, W, C), and maps (N, h, w) at any resolution
(compute_cam's, or any other method's); maps are resized bilinearly to the images and ranked, most relevant
first. "Score" is the class's probability: the output's own softmax or sigmoid, or a softmax over it. The class
is each image's top class unless `class_index` says otherwise.

=========================  =======================================================================  ==========
deletion / insertion       the class score as the most relevant pixels are replaced by the baseline  Petsiuk et al.
                           (deletion) or put back into it (insertion), in `steps` equal steps; the     2018 (RISE)
                           area under the curve (trapezoids on [0, 1]): deletion low, insertion high
                           is good
average_drop /             AD = 100 * mean_i max(0, Y_i - O_i) / Y_i, IC = 100 * mean_i [O_i > Y_i];    Chattopadhay
increase_in_confidence     Y the score of the image, O of the image multiplied by its map in [0, 1]    et al. 2018
road                       ROAD: remove the most (or least) relevant p% and fill them by noisy         Rong et al.
                           linear imputation (each removed pixel the mean of its neighbours, plus       2022
                           noise), so that the filling leaks no shape; the score at each p
pointing_game              hit if the map's peak falls inside the box or mask (within `tolerance`      Zhang et al.
                           pixels); energy_pointing_game: the map's share of its mass in the mask      2016; Wang
                                                                                                      et al. 2020
model_randomization        cascading: a copy's layers re-initialised from the top down, one more at    Adebayo et
                           each step; Spearman's rho of each image's map before and after              al. 2018
data_randomization         a copy trained on shuffled labels; rho of its maps against the model's
=========================  =======================================================================  ==========

Deletion and insertion run inside one compiled function per input shape: the perturbed copies are made in
the graph from the image, the baseline and each pixel's rank, and go through the model in batches, so no
copy is made in NumPy. The default baseline is each image's mean colour: a constant keeps no trace of what
was removed (Petsiuk et al. delete to black), where a blur keeps the removed object's colour and coarse shape,
so a model that reads colour still sees it (measured in tests/test_metrics.py: on coloured squares every map's
deletion area was about 0.96 with a blurred baseline). "blur" (a Gaussian, sigma = 5% of the longer side, as
RISE's insertion starts from) and "zero" are there to choose.

A model with several inputs: every function that runs the model takes compute_cam's ``input=`` (the input the
images go to, a name or index) and ``other_inputs=`` (the others' values: one item shared by every image, or one
row per image), read by the same :func:`camwidget.inputs.feed.make_feed`; each perturbed copy goes with its image's
other inputs.
"""

from camwidget.metrics.common import BASELINES, baseline_of, rank_pixels

# the explorer's check view and the tests reach these through camwidget.metrics
from camwidget.metrics.common import _check_steps as _check_steps
from camwidget.metrics.common import _resize as _resize
from camwidget.metrics.localisation import energy_pointing_game, pointing_game, region_mask
from camwidget.metrics.perturbation import (
    Confidence,
    Curve,
    CurveOptions,
    Road,
    confidence,
    deletion,
    insertion,
    noisy_linear_imputation,
    road,
)
from camwidget.metrics.randomisation import (
    Randomization,
    copy_model,
    data_randomization,
    model_randomization,
    spearman,
)

__all__ = [
    "BASELINES",
    "Confidence",
    "Curve",
    "CurveOptions",
    "Randomization",
    "Road",
    "baseline_of",
    "confidence",
    "copy_model",
    "data_randomization",
    "deletion",
    "energy_pointing_game",
    "insertion",
    "model_randomization",
    "noisy_linear_imputation",
    "pointing_game",
    "rank_pixels",
    "region_mask",
    "road",
    "spearman",
]
