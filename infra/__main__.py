"""Pulumi entry point (`main: infra/` in Pulumi.yaml).

Validates the whole stack config and every traffic-policy file first; on a mistake it logs
one line per problem and stops before a single resource is registered.
"""

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env

from infra.config import ConfigError
from infra.program import declare, load

# The engine passes stack config in PULUMI_CONFIG; values set in-process (tests) win.
config_values = {**get_config_env(), **CONFIG.get()}

try:
    stack_plan = load(config_values)
except ConfigError as exc:
    for problem in exc.problems:
        pulumi.log.error(problem)
    # RunError ends the program with the messages above and no Python traceback.
    raise pulumi.RunError(f"invalid stack config: {len(exc.problems)} problem(s)") from None

declare(stack_plan)
