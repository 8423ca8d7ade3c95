"""CAM methods, by family, in one registry (:data:`METHODS`): the gradient family (Grad-CAM, Grad-CAM++,
HiResCAM, XGrad-CAM, Layer-CAM, Grad-CAM element-wise, Eigen-Grad-CAM, Smooth Grad-CAM++), the perturbation family
(Score-CAM, SS-CAM, IS-CAM, Ablation-CAM), the activation family (Eigen-CAM, FEM, KPCA-CAM), the contrastive
family (Finer-CAM),
the methods that read the model (CAM, Guided Grad-CAM), and the baseline (Random-CAM). Importing this
package registers them all."""

import dataclasses

from camwidget.methods import activation, baseline, contrastive, gradient, model_based, perturbation
from camwidget.methods.activation import project_first_component
from camwidget.methods.registry import (
    METHODS,
    CAMMethod,
    Formula,
    MethodInputs,
    Option,
    PassInputs,
    get_method,
    method_name,
    register,
    register_formula,
)
from camwidget.methods.scaling import finite, method_maps, normalize_maps

FAMILIES = (
    gradient,
    perturbation,
    activation,
    contrastive,
    model_based,
    baseline,
)  # the Method dropdown's order: by family, Grad-CAM first
for _family in FAMILIES:  # each method knows its family (the dropdown's groups)
    for _name in _family.NAMES:
        METHODS[_name] = dataclasses.replace(METHODS.pop(_name), family=_family.FAMILY)

__all__ = [
    "METHODS",
    "FAMILIES",
    "CAMMethod",
    "Formula",
    "MethodInputs",
    "get_method",
    "method_name",
    "Option",
    "PassInputs",
    "register",
    "register_formula",
    "method_maps",
    "normalize_maps",
    "finite",
    "project_first_component",
]
