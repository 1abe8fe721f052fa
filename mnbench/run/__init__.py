"""`mnbench run`: the plan of a run and its passes until every group is precise enough (plan)."""
