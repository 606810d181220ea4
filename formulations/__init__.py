"""Model builders: task set -> optimization model -> schedule (imported as
``rtgen_opt.formulations``). Every engine returns the same ``SolveResult`` with the same
``Schedule`` table that the executor produces."""
