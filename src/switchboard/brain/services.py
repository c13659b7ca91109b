"""Builds the brain's services from Settings, for the composition root (`app.py`).

    brain = build_brain(settings, transcriber=stt)
    await apply_approved_versions(brain)        # once at start-up
    engine_services.intents = brain.intents
    engine_services.extras.update(brain.engine_extras())
    app.include_router(brain.router(dependencies=[...auth...]))
    asyncio.create_task(brain.improvements.run_forever(settings.improvement_interval_hours * 3600))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter

from switchboard.brain.api import build_router
from switchboard.brain.converse import ConversationService, Transcriber
from switchboard.brain.intents import IntentClassifier
from switchboard.brain.llm import LLMClient
from switchboard.brain.memory import BrainMemory, ImprovementJob
from switchboard.brain.personas import Persona, PersonaRegistry
from switchboard.brain.repository import BrainRepository, JsonBrainRepository
from switchboard.brain.strategies import Strategy, load_strategies
from switchboard.brain.tools import CallbackSink, CrmLookup, TicketSink, ToolRegistry
from switchboard.brain.translation import build_translator
from switchboard.speech.base import ProviderFailure


@dataclass
class Brain:
    llm: LLMClient | None
    intents: IntentClassifier
    personas: PersonaRegistry
    strategies: dict[str, Strategy]
    tools: ToolRegistry
    conversation: ConversationService
    repository: BrainRepository
    memory: BrainMemory
    improvements: ImprovementJob

    def engine_extras(self) -> dict[str, Any]:
        """What `EngineServices.extras` needs for the `converse` step."""
        return {"conversation": self.conversation, "memory": self.memory}

    def router(self, dependencies: Sequence[Any] | None = None) -> APIRouter:
        return build_router(self.repository, strategies=self.strategies, improvements=self.improvements,
                            dependencies=dependencies)

    async def warm_up(self, scenarios: Sequence[Any]) -> None:
        """Load the intent encoder and embed every scenario's examples before the first call."""
        semantic = self.intents.semantic
        if semantic is None:
            return
        await semantic.warm_up()
        for scenario in scenarios:
            llm = scenario.spec.llm
            await semantic.prepare(llm.intent_categories, llm.fallback_tokens, llm.examples)

    async def aclose(self) -> None:
        if self.llm is not None:
            await self.llm.aclose()


async def apply_approved_versions(brain: Brain) -> None:
    """Re-apply persona versions and strategy versions approved/posted in earlier runs."""
    for name, data in (await brain.repository.persona_versions()).items():
        if name in brain.personas:
            brain.personas.replace(Persona.model_validate(data))
    for stored in await brain.repository.list_strategies():
        brain.strategies[stored.id] = stored.strategy


def build_brain(settings: Any, *, transcriber: Transcriber | None = None, crm_lookup: CrmLookup | None = None,
                create_ticket: TicketSink | None = None, schedule_callback: CallbackSink | None = None,
                repository: BrainRepository | None = None,
                on_provider_failure: Any = None) -> Brain:
    """Everything from Settings: no LLM URL -> fallback tokens and scripted personas."""
    llm = LLMClient.from_settings(settings, on_provider_failure=on_provider_failure)
    intents = IntentClassifier.from_settings(settings, llm)
    personas = PersonaRegistry.load_dir(settings.personas_dir) if settings.personas_dir.is_dir() \
        else PersonaRegistry()
    strategies: dict[str, Strategy] = load_strategies(settings.strategies_dir) \
        if settings.strategies_dir.is_dir() else {}
    tools = ToolRegistry(crm_lookup=crm_lookup, create_ticket=create_ticket, schedule_callback=schedule_callback)
    conversation = ConversationService(personas, llm=llm, tools=tools, transcriber=transcriber,
                                       strategies=strategies, company=settings.company,
                                       max_reply_tokens=settings.llm_max_reply_tokens,
                                       tool_mode=settings.llm_tool_mode,
                                       translator=build_translator(settings),
                                       working_language=settings.llm_working_language)
    repo = repository or JsonBrainRepository(settings.data_dir / "brain.json")
    memory = BrainMemory(repo, llm, every_n=settings.memory_summary_every)
    improvements = ImprovementJob(repo, llm, personas, strategies)
    return Brain(llm, intents, personas, strategies, tools, conversation, repo, memory, improvements)


__all__ = ["Brain", "ProviderFailure", "apply_approved_versions", "build_brain"]
