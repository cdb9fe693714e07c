"""rsbench's own executors, declared through the same hook a third party would use."""

from rsbench import ExecutorInfo, hookimpl


@hookimpl
def rsbench_register_executors(register):
    register(ExecutorInfo(name="local", executor_class="rsbench.suites.executors.local:LocalExecutor",
                          description="bounded pool of worker processes on this machine (default)"))
    register(ExecutorInfo(name="ray", executor_class="rsbench.suites.executors.ray_executor:RayExecutor",
                          description="one Ray task per evaluation on a Ray cluster (--address) or a local instance"))
