"""CAM methods, by family, in one registry (:data:`METHODS`): the gradient family (Grad-CAM, Grad-CAM++,
HiResCAM, XGrad-CAM, Layer-CAM, Grad-CAM element-wise, Eigen-Grad-CAM), the perturbation family (Score-CAM), the
activation family (Eigen-CAM, FEM, KPCA-CAM),
the methods that read the model (CAM, Guided Grad-CAM), and the baseline (Random-CAM). Importing this
package registers them all."""

from camwidget.methods import activation, baseline, gradient, model_based, perturbation
from camwidget.methods.activation import project_first_component
from camwidget.methods.registry import METHODS, CAMMethod, Formula, MethodInputs, get_method, register, register_formula
from camwidget.methods.scaling import finite, method_maps, normalize_maps

FAMILIES = (
    gradient,
    perturbation,
    activation,
    model_based,
    baseline,
)  # the Method dropdown's order: by family, Grad-CAM first
for _name in [name for family in FAMILIES for name in family.NAMES]:
    METHODS[_name] = METHODS.pop(_name)

__all__ = [
    "METHODS",
    "FAMILIES",
    "CAMMethod",
    "Formula",
    "MethodInputs",
    "get_method",
    "register",
    "register_formula",
    "method_maps",
    "normalize_maps",
    "finite",
    "project_first_component",
]
