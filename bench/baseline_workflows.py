"""Bare workflows used as in-run baselines; kept apart so the sandbox imports nothing else."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_noop")
async def noop() -> str:
    return "ok"


@workflow.defn(name="BenchOneActivity")
class OneActivity:
    @workflow.run
    async def run(self) -> str:
        result: str = await workflow.execute_activity(
            "bench_noop", start_to_close_timeout=timedelta(seconds=10), result_type=str
        )
        return result


@workflow.defn(name="BenchOneLocalActivity")
class OneLocalActivity:
    @workflow.run
    async def run(self) -> str:
        result: str = await workflow.execute_local_activity(
            "bench_noop", start_to_close_timeout=timedelta(seconds=10), result_type=str
        )
        return result
