"""How a model is fitted: the validated ``training`` section of a configuration."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from rhocore.plugins.options import PluginOptions
from rhocore.training.scorers import LOSS


class TrainingOptions(PluginOptions):
    """How a model is fitted (the ``training`` section of a configuration)."""

    optimizer: Literal["adam", "lbfgs", "ridge"] = Field(
        "adam",
        description="'adam': mini-batch Adam; 'lbfgs': full-batch L-BFGS with a strong-Wolfe "
        "line search, one step of up to lbfgs_iterations iterations per epoch; 'ridge': the "
        "exact least-squares solution of the linear model (closed form, regularisation "
        "chosen on the validation set; up to a few hundred small molecules).",
    )
    ridge_warm_start: bool = Field(
        True,
        description="With 'adam' or 'lbfgs', start from the closed-form linear solution when "
        "the model starts out linear (the 'nonlinear' model with one head does).",
    )
    ridge_regularizations: list[float] = Field(
        [1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4],
        min_length=1,
        description="Ridge strengths tried by optimizer 'ridge' (units of the metric loss "
        "per squared weight); the one with the lowest validation loss (or, with "
        "ridge_selection 'stm-images', the best validation images) is kept.",
    )
    ridge_max_support: int | None = Field(
        None,
        ge=1,
        description="Most training coefficients that span the closed-form ridge solution (the "
        "support; for the 'kernel' model its support atoms). A larger training set keeps its "
        "first structures up to this many coefficients as the support and fits on every "
        "structure (subset-of-regressors ridge: N M^2 time, 3 M^2 memory). None: as many as "
        "one dense matrix holds (23 000: the solver holds three such matrices, 12.7 GB).",
    )
    ridge_selection: str = Field(
        LOSS,
        description="How optimizer 'ridge' chooses among ridge_regularizations: 'loss', the "
        "validation metric loss, or the name of a validation scorer, e.g. 'stm-images' "
        "(ILDOS targets): constant-current images of the validation structures against "
        "their RI references. Use 'stm-images' with the squared relative metric, whose "
        "validation loss is dominated by the far vacuum that no image sees.",
    )
    ridge_selection_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Options of the ridge_selection scorer, checked by that scorer (for "
        "'stm-images' see the STM documentation); none for 'loss'.",
    )
    epochs: int = Field(300, ge=1, description="Maximum number of passes over the training set.")
    learning_rate: float = Field(
        1e-2, gt=0, description="Initial learning rate (Adam), step scale (L-BFGS, use 1)."
    )
    batch_size: int = Field(8, ge=1, description="Structures per optimisation step (Adam).")
    batch_atoms: int | None = Field(
        None,
        ge=1,
        description="When set, Adam batches hold up to this many atoms instead of batch_size "
        "structures (a larger structure is a batch of its own), which bounds the memory of "
        "a step for structures of very different sizes.",
    )
    metric_cutoff: float | None = Field(
        None,
        gt=0,
        description="Keep only the metric blocks of atom pairs at most this far apart "
        "(angstrom; minimum image in periodic cells); None keeps all pairs. Memory then grows "
        "linearly with the atoms; the relative change of d^T S d it causes is logged.",
    )
    num_workers: int = Field(
        0,
        ge=0,
        description="Data-loader worker processes that read the dataset file (0: read in "
        "the main process).",
    )
    lbfgs_iterations: int = Field(20, ge=1, description="L-BFGS iterations per epoch.")
    weight_decay: float = Field(
        0.0, ge=0, description="L2 penalty on the parameters (per structure-mean loss)."
    )
    scheduler_factor: float = Field(
        0.5, gt=0, lt=1, description="Learning-rate factor when the monitored loss plateaus."
    )
    scheduler_patience: int = Field(
        10, ge=0, description="Epochs without improvement before the learning rate is reduced."
    )
    early_stopping_patience: int = Field(
        50, ge=1, description="Epochs without improvement before training stops."
    )
    seed: int = Field(0, description="Seed of parameter initialisation and batch order.")
    device: Literal["cpu"] = Field("cpu", description="Torch device.")
    dtype: Literal["float64"] = Field("float64", description="Floating-point precision.")

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "stm_selection" in data:
            raise ValueError(
                "training.stm_selection is now training.ridge_selection_options (the options "
                "of the ridge_selection scorer): rename the key"
            )
        return data

    @model_validator(mode="after")
    def _scorers_choose_ridge_strengths_only(self) -> TrainingOptions:
        if self.ridge_selection != LOSS and self.optimizer != "ridge":
            raise ValueError(
                f"training.ridge_selection '{self.ridge_selection}' chooses among the ridge "
                f"strengths of optimizer 'ridge', not for optimizer '{self.optimizer}': set "
                "training.optimizer: ridge, or ridge_selection: loss"
            )
        if self.ridge_selection == LOSS and self.ridge_selection_options:
            raise ValueError(
                "training.ridge_selection_options are the options of a validation scorer; "
                "ridge_selection 'loss' takes none"
            )
        return self
