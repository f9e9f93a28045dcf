"""Demo data for an empty database: ``python -m db.seed`` (``make run`` migrates first).

Everything here is original sample text. The data set is deterministic: one seeded
``random.Random`` makes every choice and every timestamp is an offset from ``BASE``, so two loads
produce the same rows (apart from the password hash, which has a fresh salt).

The module is data tables at the top (users, authors, categories, tags, articles, markets and the
text pools that article bodies and comments are composed from), a pure planner
(:func:`build_plan`) that turns them into rows with exact denormalised counters, and
:func:`load_demo_data`, which inserts the plan in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tortoise import Tortoise
from tortoise.transactions import in_transaction

from accounts.passwords import hash_password
from comments.render import render_markdown
from db.config import tortoise_config
from db.models import (
    Article,
    ArticleTag,
    Author,
    Category,
    Comment,
    Market,
    MarketArticle,
    MarketState,
    MarketTag,
    Outcome,
    Position,
    Role,
    Tag,
    User,
)
from markets.ledger import fund_market, grant_starting_credits
from markets.trading import Trading, record_price
from refusals import Refusal
from settings import Settings, load_settings

SEED = 20261127
BASE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DEMO_PASSWORD = "demo-password"

# The showcase article (API.md, "Demo data").
CENTRAL_ASIA_SLUG = "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum"


def _flat(text: str) -> str:
    """A wrapped, indented text block as one line."""
    return " ".join(text.split())


def _items(text: str) -> tuple[str, ...]:
    """The blank-line separated items of a text block, each on one line."""
    return tuple(_flat(block) for block in re.split(r"\n\s*\n", text) if block.strip())


def slugify(title: str) -> str:
    """``"This Year's Heatwave"`` → ``"this-years-heatwave"``."""
    text = title.lower().replace("'", "").replace("\u2019", "")
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


# --------------------------------------------------------------------------------------------
# Users, authors, categories, tags
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserSpec:
    username: str
    display_name: str
    role: Role
    joined_days_ago: int


USERS: tuple[UserSpec, ...] = (
    UserSpec("admin", "Site Admin", Role.ADMIN, 720),
    UserSpec("editor", "Oliver Scott", Role.AUTHOR, 700),
    UserSpec("alice", "Alice Martin", Role.READER, 410),
    UserSpec("bob", "Bob Okafor", Role.READER, 385),
    UserSpec("maria", "Maria Rossi", Role.READER, 350),
    UserSpec("kenji", "Kenji Watanabe", Role.READER, 312),
    UserSpec("fatima", "Fatima Haddad", Role.READER, 281),
    UserSpec("lucas", "Lucas Pereira", Role.READER, 240),
    UserSpec("priya", "Priya Nair", Role.READER, 203),
    UserSpec("tomasz", "Tomasz Nowak", Role.READER, 161),
    UserSpec("amina", "Amina Yusuf", Role.READER, 118),
    UserSpec("diego", "Diego Fernández", Role.READER, 87),
)

# Who writes the generated comments (the hand-written Central Asia thread also has the editor).
COMMENTERS: tuple[str, ...] = tuple(u.username for u in USERS if u.role is Role.READER)

# (slug, name, bio, username of the staff account behind the byline)
AUTHORS: tuple[tuple[str, str, str, str | None], ...] = (
    (
        "oliver-scott",
        "Oliver Scott",
        "Diplomatic editor covering summits, alliances and the quiet work of negotiation.",
        "editor",
    ),
    (
        "nadia-rahimova",
        "Nadia Rahimova",
        "Central Asia correspondent in Almaty, reporting on trade routes, energy and politics.",
        None,
    ),
    (
        "amara-nwosu",
        "Amara Nwosu",
        "Economics correspondent writing about growth, debt and the global financial system.",
        None,
    ),
    (
        "daniel-kowalski",
        "Daniel Kowalski",
        "Markets reporter covering commodities, currencies and the traders who move them.",
        None,
    ),
    (
        "lena-fischer",
        "Lena Fischer",
        "Europe correspondent in Brussels, following elections, trade policy and the EU.",
        None,
    ),
    (
        "rahul-mehta",
        "Rahul Mehta",
        "Technology editor reporting on artificial intelligence, chips and cybersecurity.",
        None,
    ),
    (
        "sofia-alvarez",
        "Sofía Álvarez",
        "Science and climate reporter with a background in oceanography.",
        None,
    ),
    (
        "hiroshi-tanaka",
        "Hiroshi Tanaka",
        "Tokyo-based Asia correspondent covering security, markets and natural disasters.",
        None,
    ),
    (
        "grace-mwangi",
        "Grace Mwangi",
        "Africa correspondent in Nairobi, writing about trade, agriculture and elections.",
        None,
    ),
    (
        "claire-dubois",
        "Claire Dubois",
        "Health correspondent covering medicine, public health and the science behind them.",
        None,
    ),
)

# (slug, name, parent slug): parents before children; siblings in display order.
CATEGORIES: tuple[tuple[str, str, str | None], ...] = (
    ("politics", "Politics", None),
    ("diplomacy", "Diplomacy", "politics"),
    ("bilateral-relations", "Bilateral Relations", "diplomacy"),
    ("summits", "Summits", "diplomacy"),
    ("elections", "Elections", "politics"),
    ("economy", "Economy", None),
    ("markets", "Markets", "economy"),
    ("commodities", "Commodities", "markets"),
    ("currencies", "Currencies", "markets"),
    ("trade", "Trade", "economy"),
    ("energy", "Energy", "economy"),
    ("technology", "Technology", None),
    ("ai", "AI", "technology"),
    ("cybersecurity", "Cybersecurity", "technology"),
    ("space", "Space", "technology"),
    ("science", "Science", None),
    ("climate", "Climate", "science"),
    ("oceans", "Oceans", "climate"),
    ("health", "Health", "science"),
    ("world", "World", None),
    ("asia", "Asia", "world"),
    ("central-asia", "Central Asia", "asia"),
    ("east-asia", "East Asia", "asia"),
    ("europe", "Europe", "world"),
    ("africa", "Africa", "world"),
)

TAGS: tuple[tuple[str, str], ...] = (
    ("central-asia", "Central Asia"),
    ("regional-integration", "Regional Integration"),
    ("azerbaijan", "Azerbaijan"),
    ("diplomacy", "Diplomacy"),
    ("featured", "Featured"),
    ("elections", "Elections"),
    ("trade", "Trade"),
    ("energy", "Energy"),
    ("oil", "Oil"),
    ("inflation", "Inflation"),
    ("interest-rates", "Interest Rates"),
    ("central-banks", "Central Banks"),
    ("artificial-intelligence", "Artificial Intelligence"),
    ("regulation", "Regulation"),
    ("cybersecurity", "Cybersecurity"),
    ("climate-change", "Climate Change"),
    ("renewables", "Renewables"),
    ("public-health", "Public Health"),
    ("space", "Space"),
    ("research", "Research"),
    ("china", "China"),
    ("european-union", "European Union"),
    ("africa", "Africa"),
    ("united-nations", "United Nations"),
    ("supply-chains", "Supply Chains"),
    ("semiconductors", "Semiconductors"),
    ("food-security", "Food Security"),
    ("security", "Security"),
)


# --------------------------------------------------------------------------------------------
# Article bodies: each article has its own lead and detail paragraphs; the rest of its body is
# drawn from the pools of its desks (and the general pool): background, reaction, outlook.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Desk:
    context: tuple[str, ...]
    reaction: tuple[str, ...]
    outlook: tuple[str, ...]


DESKS: dict[str, Desk] = {
    # Agreements reached, bilateral or multilateral.
    "accord": Desk(
        context=_items("""
            Diplomats involved in the preparations described the atmosphere as businesslike, with
            most of the difficult wording settled by officials before ministers arrived.

            The talks build on a series of lower-level meetings held over the past year, several
            of which ended without a formal statement.

            Negotiators spent much of the final session on the sequencing of commitments rather
            than on their substance, according to two people familiar with the discussions.

            Much of the groundwork was laid by technical working groups, which have met quietly
            every few months.

            The final text is shorter and less specific than some participants had hoped, a common
            trade-off when every government has to agree.

            Officials were careful to stress that the arrangement is not directed against any
            third country.
        """),
        reaction=_items("""
            “The tone has changed more than the text,” said one senior official, who asked not to
            be named because the discussions were private.

            Analysts cautioned that declarations of this kind are easier to sign than to carry
            out, pointing to earlier agreements that stalled at the implementation stage.

            Opposition politicians questioned whether the commitments would survive a change of
            government.

            “Trust is built in small steps, and this is one of them,” said Farida Akhmetova, a
            fellow at a regional policy institute.

            Business groups welcomed the outcome but asked for clearer timelines.
        """),
        outlook=_items("""
            A joint working group will be asked to report back on implementation within twelve
            months.

            Much will depend on whether the promised working groups meet on schedule and publish
            what they agree.

            Diplomats said a follow-up meeting at deputy-minister level would take place within
            weeks.

            Observers will be watching the first concrete projects for signs that the political
            momentum is real.
        """),
    ),
    # Talks still open or stuck.
    "negotiation": Desk(
        context=_items("""
            Negotiators have spent much of their time on the sequencing of commitments rather than
            on their substance, according to two people familiar with the discussions.

            Officials said several points of disagreement were technical, but that the largest
            gaps were political.

            Delegations have traded drafts late into the night, with each side accusing the other
            of moving the goalposts.

            Earlier rounds ended with statements that papered over the same differences, which
            some participants now say was a mistake.

            Consensus rules mean that a single delegation can hold up a final text.
        """),
        reaction=_items("""
            “Nobody wants to be blamed for failure, which is sometimes the best reason to expect a
            deal,” said one veteran negotiator.

            Observers said the gap between the two sides had narrowed but not closed.

            Some delegates privately questioned whether a weak agreement would be better than
            none.

            Campaign groups said ordinary people would pay the price of further delay.
        """),
        outlook=_items("""
            Negotiators are expected to meet again within weeks.

            Much will depend on whether political leaders give their negotiators more room.

            A deal, if one comes, is likely to be narrower than originally planned.
        """),
    ),
    "central_asia": Desk(
        context=_items("""
            Landlocked and wedged between larger powers, the Central Asian states have long looked
            for ways to reduce their dependence on any single trade route.

            Trade among the five Central Asian republics has grown steadily since the late 2010s,
            helped by the reopening of border crossings that were closed for years.

            The Caspian Sea has become a focal point for planners seeking a route between China
            and Europe that avoids the northern corridor.

            Water, energy and transport are tightly linked in the region: upstream countries hold
            the rivers, while downstream states hold most of the gas and farmland.

            Regional leaders have met in a consultative format every year since 2018, a practice
            that was once considered unlikely to last.

            Rail and ferry operators on the trans-Caspian route have invested in new terminals, but
            border procedures remain slow.

            Young populations and fast-growing cities have added urgency to plans for new jobs and
            infrastructure.
        """),
        reaction=_items("""
            “The region is finally talking to itself, not just to its big neighbours,” said Timur
            Sadykov, an economist based in Almaty.

            Business owners in Tashkent and Bishkek said they would judge the plans by their effect
            on everyday costs.

            Some analysts warned that rivalries between the larger states could still slow
            cooperation on sensitive issues such as water.

            “Every project here is regional whether we like it or not, because the rivers, roads
            and power lines all cross borders,” said one official.

            Civil society groups asked that environmental assessments be published before large
            projects begin.
        """),
        outlook=_items("""
            Officials expect the next leaders' meeting to focus on transport corridors and a joint
            approach to climate adaptation.

            Whether the new momentum lasts may depend on financing, much of which is still to be
            found.

            For the region's exporters, the test will be whether the promised projects deliver
            predictable prices and schedules.
        """),
    ),
    # A single upcoming or ongoing election.
    "elections": Desk(
        context=_items("""
            Campaigning has focused on the cost of living, housing and public services, with
            foreign policy barely mentioned.

            Turnout has fallen at each of the past three national votes, a trend that all the main
            parties have promised to reverse.

            Independent observers have been invited to monitor the vote, and their preliminary
            findings are due shortly after polls close.

            Smaller parties have gained ground in recent polls, complicating the arithmetic in the
            next parliament.

            Campaign finance rules were tightened last year, limiting the amount any single donor
            may give.

            Social media platforms have been asked to label political advertising and publish who
            paid for it.

            Polling has become harder as fewer people answer their phones, and pollsters have
            turned to online panels to fill the gap.
        """),
        reaction=_items("""
            “People are tired, but they are not indifferent,” said Marta Kovács, a political
            scientist who studies voter behaviour.

            Party officials accused their rivals of making promises the budget could not support.

            A senior campaign adviser said internal polling showed the race was closer than public
            surveys suggested.

            Election monitors said they had received few formal complaints so far, most of them
            about access to polling stations.
        """),
        outlook=_items("""
            Final results must be certified by the electoral commission within ten days of the
            vote.

            Analysts said the result would set the tone for a busy year of votes elsewhere.

            Both main camps have said they will accept the result if observers judge the process
            fair.
        """),
    ),
    # Prices of commodities, currencies and rates.
    "markets": Desk(
        context=_items("""
            Trading volumes were thinner than usual, which traders said exaggerated the price
            moves.

            Investors have spent much of the year trying to judge how quickly inflation will
            return to target.

            Moves in the dollar have rippled across asset classes this year, from commodities to
            emerging-market bonds.

            Hedge funds had built up large positions in recent weeks, according to weekly
            positioning data.

            Central banks have signalled that they will move cautiously, preferring to wait for
            more evidence before changing course.

            Volatility measures rose to their highest level in several weeks before easing.

            Brokers said long-term investors, rather than short-term speculators, had driven much
            of the recent activity.
        """),
        reaction=_items("""
            “The market is pricing a soft landing, but it is not pricing much room for error,”
            said Ines Carvalho, a strategist at a European bank.

            Some analysts argued the move was overdone and likely to reverse once positioning
            normalised.

            Traders said the main driver was a shift in expectations rather than any single piece
            of news.

            Economists at several banks revised their forecasts, though most changes were small.
        """),
        outlook=_items("""
            Attention now turns to next week's inflation figures, which could shift expectations
            for interest rates.

            Analysts expect prices to remain volatile until the picture becomes clearer.

            Several banks said they would revisit their year-end forecasts after the data.

            For now, most investors appear content to wait rather than take large new positions.
        """),
    ),
    # Moving goods: ports, rail, shipping, borders.
    "logistics": Desk(
        context=_items("""
            Shipping costs remain well above their pre-pandemic average, even after falling from
            last year's peaks.

            Exporters have spent the past few years diversifying routes and suppliers after a
            string of disruptions.

            Customs procedures, rather than tariffs, are now the main source of delay on many
            routes, according to industry groups.

            Port authorities have invested heavily in automation, though labour unions have
            questioned the pace of change.

            Freight forwarders say reliability now matters to their customers as much as price.

            Trade in intermediate goods, the parts that go into finished products, has been
            particularly sensitive to disruption.
        """),
        reaction=_items("""
            “Every day a container waits at a border is a day of working capital tied up,” said
            Oksana Petrenko, who runs a freight forwarding company.

            Industry associations welcomed the progress but said consistency would be the real
            test.

            Logistics managers said they would want several months of dependable service before
            moving more cargo.
        """),
        outlook=_items("""
            Logistics companies expect volumes to keep growing if border waiting times continue to
            fall.

            Exporters will be watching whether promised digital customs systems arrive on time.

            Economists said the full effect on trade flows might not be visible in the data until
            next year.
        """),
    ),
    # Tariffs, trade agreements and trade law.
    "trade_policy": Desk(
        context=_items("""
            Tariffs have become a more common tool of economic policy over the past decade,
            reversing a long trend toward lower barriers.

            Governments increasingly link trade policy to security, particularly for technology and
            critical materials.

            Rules on where goods come from have become as contentious as tariffs themselves.

            Many small exporters say they lack the staff to handle the paperwork that new trade
            rules require.

            Businesses have responded to uncertainty by holding larger inventories, which ties up
            cash.
        """),
        reaction=_items("""
            Critics argued that the benefits would flow mainly to large companies able to navigate
            complex rules.

            A trade official described the discussions as “constructive and detailed”, language
            usually reserved for negotiations that are moving.

            Farm and industry groups have lobbied hard on both sides.
        """),
        outlook=_items("""
            Any agreement would still need ratification, a process that can take more than a
            year.

            Economists said the full effect on trade flows might not be visible in the data until
            next year.

            Businesses said they would keep contingency plans in place until the rules are
            settled.
        """),
    ),
    "energy": Desk(
        context=_items("""
            Energy security has moved up the political agenda across Europe and Asia since the
            supply shocks of recent years.

            Energy demand in winter depends heavily on temperatures, making forecasts unusually
            uncertain.

            Large energy projects typically take five to ten years from planning to first
            delivery.

            Utilities have signed more long-term contracts in the past two years than at any time
            in the previous decade.

            Renewable capacity is growing quickly, but grids and storage have struggled to keep
            pace.

            Electricity prices have fallen from their peaks but remain higher than before the
            crisis in most of Europe.

            Governments are trying to balance short-term supply needs with long-term climate
            targets.
        """),
        reaction=_items("""
            “Security of supply used to be a technical question; now it is a political one,” said
            Jonas Berg, an energy analyst in Oslo.

            Environmental groups said the shift away from fossil fuels needed to move faster.

            Industry executives said clearer regulation would do more to unlock investment than
            subsidies.

            Consumer groups warned that households would feel any price increases within months.
        """),
        outlook=_items("""
            Regulators are expected to publish updated supply forecasts early next year.

            Analysts expect prices to remain sensitive to any disruption in supply.

            Investors will watch upcoming auctions and contracts for signs of how much new capacity
            is coming.
        """),
    ),
    "ai_policy": Desk(
        context=_items("""
            The pace of development has outrun most regulatory frameworks, leaving agencies to
            interpret older laws for new products.

            Large models require vast computing power, concentrating development among a handful
            of companies with access to advanced chips.

            Organisations adopting the tools say the gains are real but uneven, concentrated in
            tasks such as drafting, coding and summarising.

            Independent testing of AI systems remains limited, and there is no agreed standard for
            what a safe system looks like.

            Several governments have set up dedicated offices to evaluate advanced systems before
            and after release.

            Open-source developers argue that publicly available models allow more scrutiny, not
            less.
        """),
        reaction=_items("""
            “We are regulating a moving target, so the rules have to be about processes, not
            specific technologies,” said Aiko Mori, a technology policy researcher.

            Civil liberties organisations said existing safeguards did not go far enough.

            “The hardest part is not building the system but knowing when it fails,” said one
            engineer at a mid-sized software firm.

            Smaller companies worried that compliance costs would favour established players.
        """),
        outlook=_items("""
            Officials said further guidance would be published in stages over the coming year.

            Researchers expect the next generation of systems to raise the same questions in
            sharper form.

            The first decisions by regulators and courts are likely to set important precedents.
        """),
    ),
    "chips": Desk(
        context=_items("""
            Demand for specialised chips has exceeded supply for much of the past two years,
            pushing up prices and lead times.

            A handful of companies dominate the most advanced manufacturing steps, leaving the
            industry exposed to disruption at a few sites.

            Building a leading-edge factory costs tens of billions of dollars and takes years.

            Governments have offered large subsidies to attract chip production, hoping to reduce
            reliance on imports.
        """),
        reaction=_items("""
            “Capacity decisions made today determine what is available three years from now,” said
            Mei Lin Ong, an industry analyst in Singapore.

            Customers said they were paying more for guaranteed supply.
        """),
        outlook=_items("""
            Industry analysts expect further consolidation as costs rise.

            Much of the capacity announced this year is unlikely to be in production before 2028.
        """),
    ),
    "cyber": Desk(
        context=_items("""
            Security researchers have warned for years that critical infrastructure relies on
            software that was never designed to be connected to the internet.

            Attacks on logistics and infrastructure have grown more frequent, as criminals target
            organisations that cannot afford downtime.

            Many operators rely on a small number of software suppliers, which means a single
            breach can spread widely.

            Incident reporting rules vary widely between countries, making it hard to build a full
            picture of the threat.
        """),
        reaction=_items("""
            “Resilience is not just about stopping attacks, it is about how quickly you recover,”
            said a security consultant who advises port operators.

            Insurers have raised premiums for cyber cover and now demand stricter controls before
            writing policies.
        """),
        outlook=_items("""
            Officials said they would publish lessons learned once investigations are complete.

            Security agencies are expected to issue updated guidance for operators early next
            year.
        """),
    ),
    "space": Desk(
        context=_items("""
            Launch costs have fallen sharply over the past decade, opening space to smaller
            countries and private companies.

            Mission planners build in generous margins because even minor faults can end a
            mission.

            International partners contribute instruments and funding, which adds complexity to
            scheduling.

            Most spacecraft are tested in vacuum chambers and on vibration tables that simulate the
            stresses of launch.
        """),
        reaction=_items("""
            “Space rewards patience; every test we skip is a risk we carry to the launch pad,” said
            one mission engineer.

            Officials said the programme remained within budget, a claim some independent
            reviewers questioned.
        """),
        outlook=_items("""
            The agency said it would publish results from the tests within weeks.

            Further missions are planned if this one succeeds.
        """),
    ),
    # Climate research: studies, records and measurements.
    "climate": Desk(
        context=_items("""
            Scientists have warned for years that warming is happening faster in mountain regions
            and at high latitudes than elsewhere.

            Satellite records now stretch back more than four decades, allowing researchers to
            separate long-term trends from natural variation.

            Heat is now the deadliest form of extreme weather in many countries, though it is often
            under-recorded.

            Researchers combined field measurements with satellite data and computer models to
            produce their estimates.

            Warmer oceans hold more energy, which can intensify storms and disrupt marine
            ecosystems.
        """),
        reaction=_items("""
            “The numbers are no longer surprising, but they are still alarming,” said Dr Leila
            Haddad, a climate scientist who was not involved in the work.

            Some researchers cautioned that short records make it hard to attribute any single
            event to climate change.

            Campaigners called for governments to turn the findings into binding targets.
        """),
        outlook=_items("""
            The findings are likely to feature in negotiations at the next round of climate talks.

            Researchers said better monitoring was essential to plan for the changes ahead.

            Forecasters expect the trend to continue unless emissions fall substantially.
        """),
    ),
    "health": Desk(
        context=_items("""
            Health systems are still catching up on treatments delayed during the pandemic years.

            Rural clinics often lack the equipment and staff needed for new programmes.

            Surveillance data remain patchy in many countries, making it hard to measure the true
            scale of health problems.

            Doctors say clear public communication matters as much as medical supplies.
        """),
        reaction=_items("""
            “Prevention is always cheaper than treatment, but it is the hardest thing to fund,”
            said Dr Amani Odhiambo, a public health specialist.

            Nurses' unions said staffing shortages would limit what hospitals and clinics could
            take on.

            Some experts urged caution about drawing firm conclusions from early data.
        """),
        outlook=_items("""
            Health authorities said they would review the measures within a year.

            Officials said more detailed guidance for doctors would follow.

            Funding for the following years has not yet been confirmed.
        """),
    ),
}


@dataclass(frozen=True)
class ArticleSpec:
    title: str
    category: str
    author: str
    tags: tuple[str, ...]
    desks: tuple[str, ...]
    days_ago: int
    excerpt: str
    lead: str
    details: str
    extra: str = ""  # further hand-written paragraphs (blank-line separated), at most two
    featured: bool = False
    words: int | None = None  # target body length; drawn at random when None
    comments: int | None = None  # generated comments; drawn at random when None


ARTICLES: tuple[ArticleSpec, ...] = (
    ArticleSpec(
        title="Central Asian Leaders Strengthen Ties as Azerbaijan Joins Forum",
        category="bilateral-relations",
        author="oliver-scott",
        tags=("central-asia", "regional-integration", "azerbaijan", "diplomacy", "featured"),
        desks=("central_asia", "accord"),
        days_ago=0,
        featured=True,
        words=1200,
        excerpt="""
            The five Central Asian states welcomed Azerbaijan into their annual leaders' forum and
            agreed to work toward common transit rules across the Caspian.
        """,
        lead="""
            Leaders of the five Central Asian states welcomed Azerbaijan as a full participant in
            their annual consultative forum this week, widening a grouping that has quietly become
            the region's main venue for cooperation. Meeting in Tashkent, the six leaders signed a
            joint declaration on transport, energy and water, and agreed to meet again next year
            in Baku.
        """,
        details="""
            The declaration commits the six governments to harmonise transit rules along the route
            that links Chinese railheads with the Caspian ports of Kazakhstan and Turkmenistan and,
            across the sea, with Azerbaijan and the Black Sea beyond. A pilot single-window customs
            system, under which a shipper files documents once for the whole journey, is due to
            begin testing at two border crossings next year. Leaders also endorsed a working group
            on shared rivers, a sensitive subject that earlier meetings had largely avoided.
            Azerbaijani officials described the move as recognition of ties that already run deep,
            noting that freight through the port of Alat has grown sharply over the past three
            years.
        """,
        extra="""
            The expansion reflects a shift in how the region sees itself. For most of the three
            decades since independence, the Central Asian governments dealt with one another
            mainly through larger organisations led by outside powers, and disputes over borders,
            water and gas often went unresolved for years. The leaders' forum was conceived as
            something lighter: no secretariat, no binding decisions, simply an annual meeting where
            presidents could talk without a chaperone. Bringing in Azerbaijan, which sits on the
            far shore of the Caspian and controls the westward exit of the route to Europe, turns
            that informal club into something closer to a corridor alliance. It also gives Baku a
            formal voice in discussions about water and energy that affect the whole Caspian
            basin, from fisheries to the falling level of the sea itself. Diplomats from outside
            the region, who attended as observers, said they would watch whether the wider forum
            can still reach decisions by consensus, as the original five have done.

            The practical agenda is long. Kazakhstan wants faster ferry crossings from Aktau and
            Kuryk; Uzbekistan, the most populous member, wants its goods to reach the sea without
            being held up at two or three borders; Turkmenistan is interested in selling more gas
            westward; and the mountain states, Kyrgyzstan and Tajikistan, want investment in
            hydropower and roads. Azerbaijan, for its part, has spent heavily on the port of Alat
            and on rail links to Georgia and Türkiye, and needs more cargo to pay for them.
            Several governments also want the forum to coordinate their approach to climate
            adaptation, after a series of droughts and mudslides in recent years. Officials
            stressed that no new institution would be created for now: the presidents' offices
            will take turns to coordinate work between meetings, as they have done since 2018. A
            first progress report on the customs pilot is due to be presented to foreign ministers
            in the spring.
        """,
    ),
    ArticleSpec(
        title="Kazakhstan and Uzbekistan Agree on Joint Plan to Manage Shared Rivers",
        category="bilateral-relations",
        author="nadia-rahimova",
        tags=("central-asia", "regional-integration", "diplomacy", "food-security"),
        desks=("central_asia", "accord"),
        days_ago=9,
        excerpt="""
            The two largest Central Asian economies will share river-flow data in real time and
            coordinate releases from upstream reservoirs.
        """,
        lead="""
            Kazakhstan and Uzbekistan have agreed to coordinate the management of the rivers they
            share, setting up a joint commission that will publish flow data and plan reservoir
            releases together. The plan, signed by the two countries' water ministers in Astana,
            covers the irrigation season that begins in April.
        """,
        details="""
            Under the agreement, monitoring stations on both sides of the border will feed a single
            database that farmers' associations will be able to consult online. The commission will
            also draw up a common drought protocol, setting out how cuts would be shared in a dry
            year. Cotton and wheat growers in the lower reaches of the Syr Darya have complained for
            years that water arrives late, or not at all, during the hottest weeks.
        """,
    ),
    ArticleSpec(
        title="Japan and South Korea Resume Regular Defence Talks After Long Pause",
        category="bilateral-relations",
        author="hiroshi-tanaka",
        tags=("diplomacy", "security"),
        desks=("accord",),
        days_ago=21,
        excerpt="""
            Senior defence officials from the two neighbours met in Seoul for their first scheduled
            talks in several years, focusing on communication at sea.
        """,
        lead="""
            Defence officials from Japan and South Korea held their first regularly scheduled
            security dialogue in several years this week, agreeing to restore a hotline between
            their navies and to meet twice a year. The talks in Seoul were led by deputy ministers
            and lasted most of a day.
        """,
        details="""
            Both sides said the discussions focused on avoiding accidents at sea and in the air,
            where the two militaries often operate close to each other. Historical disputes were
            not on the formal agenda, according to officials, though both delegations acknowledged
            that those disputes continue to shape public opinion at home.
        """,
    ),
    ArticleSpec(
        title="Brazil and Nigeria Sign Agreement on Agricultural Research",
        category="bilateral-relations",
        author="grace-mwangi",
        tags=("diplomacy", "africa", "food-security"),
        desks=("accord",),
        days_ago=33,
        excerpt="""
            A five-year programme will pair research institutes in the two countries to develop
            crops suited to tropical soils.
        """,
        lead="""
            Brazil and Nigeria have signed a five-year agreement to cooperate on agricultural
            research, pairing institutes in both countries to work on crop varieties and soil
            management for tropical conditions. The deal was signed in Abuja by the two
            agriculture ministers.
        """,
        details="""
            Scientists will exchange seed samples and share results from field trials, with an
            initial focus on cassava, soybean and sorghum. Nigerian officials said the programme
            would include training for extension workers, who advise farmers directly. Brazil's
            experience in turning its tropical savannah into a major grain-producing region has
            long interested African governments.
        """,
    ),
    ArticleSpec(
        title="G20 Finance Track Ends Without Joint Statement on Debt Relief",
        category="summits",
        author="amara-nwosu",
        tags=("diplomacy", "central-banks"),
        desks=("negotiation",),
        days_ago=40,
        excerpt="""
            Finance ministers agreed on technical points but could not bridge differences over how
            to restructure the debts of low-income countries.
        """,
        lead="""
            A two-day meeting of finance ministers and central bank governors from the Group of 20
            ended without a joint statement on debt relief, after delegations failed to agree on
            how private creditors should share losses in restructurings. The chair issued a summary
            of the discussions instead.
        """,
        details="""
            Officials said progress had been made on technical questions, including common
            templates for sharing data on loans to governments. Several low-income countries have
            waited more than two years for restructuring deals to be completed, delaying new
            lending. Campaigners had hoped for a clear timetable for the cases already under
            negotiation.
        """,
    ),
    ArticleSpec(
        title="Climate Talks Race to Close Gap on Adaptation Finance",
        category="summits",
        author="sofia-alvarez",
        tags=("climate-change", "diplomacy", "united-nations", "featured"),
        desks=("negotiation",),
        days_ago=6,
        featured=True,
        excerpt="""
            With days left in the talks, developing countries are pressing for a firm figure for
            money to help communities cope with heat, floods and drought.
        """,
        lead="""
            Negotiators at the annual United Nations climate talks entered the final stretch this
            week with wide differences over adaptation finance, the money meant to help vulnerable
            countries protect people from heat, floods and drought. A draft text circulated
            overnight still contained several options in brackets, the sign of unresolved
            disagreement.
        """,
        details="""
            Developing countries want wealthy nations to commit to a specific figure and a date,
            arguing that earlier pledges have not been met. Donor governments say they are willing
            to increase support but want more of it to come through development banks and private
            investment. Small island states warned that without adaptation money, some of their
            communities would have to relocate within a generation.
        """,
    ),
    ArticleSpec(
        title="Baku Hosts Caspian Connectivity Conference Ahead of Forum Expansion",
        category="summits",
        author="nadia-rahimova",
        tags=("azerbaijan", "central-asia", "regional-integration", "trade"),
        desks=("central_asia", "logistics"),
        days_ago=12,
        excerpt="""
            Transport ministers and port operators met in the Azerbaijani capital to coordinate
            investment along the trans-Caspian route.
        """,
        lead="""
            Transport ministers, port operators and railway executives from around the Caspian
            gathered in Baku this week to coordinate investment along the trans-Caspian route, days
            before Azerbaijan was expected to join the Central Asian leaders' forum. The conference
            produced a list of priority projects rather than new funding.
        """,
        details="""
            Top of the list were additional ferries, larger container yards at the ports of Alat
            and Aktau, and a shared tracking system for cargo. Operators said that a container can
            now cross from the Chinese border to the Black Sea in under three weeks when
            connections work, but that delays at the ports can double that. Development banks
            attending the conference said they were ready to finance projects that meet
            environmental and procurement standards.
        """,
    ),
    ArticleSpec(
        title="African Union Summit Puts Free Trade Area Back at Top of Agenda",
        category="summits",
        author="grace-mwangi",
        tags=("africa", "trade", "regional-integration"),
        desks=("accord", "trade_policy"),
        days_ago=47,
        excerpt="""
            Leaders pledged to speed up tariff cuts under the continental free trade agreement,
            which has been slow to change trading patterns.
        """,
        lead="""
            African leaders meeting in Addis Ababa pledged to accelerate the continental free trade
            area, agreeing to publish national tariff schedules and to simplify customs checks on
            goods traded between member states. Trade within Africa remains a small share of the
            continent's total commerce.
        """,
        details="""
            Several countries have yet to complete the paperwork needed to start trading under the
            agreement's lower tariffs. Business groups say that poor roads, slow borders and
            expensive payments between currencies are bigger obstacles than tariffs. A pan-African
            payments system, designed to let traders settle in local currencies, was presented as a
            key tool.
        """,
    ),
    ArticleSpec(
        title="Why Small States Are Becoming Brokers in Great-Power Disputes",
        category="diplomacy",
        author="oliver-scott",
        tags=("diplomacy", "united-nations"),
        desks=(),
        days_ago=27,
        words=1200,
        excerpt="""
            From prisoner exchanges to shipping corridors, a handful of smaller countries have
            built influence by offering what larger powers cannot: neutral ground.
        """,
        lead="""
            When rival powers need to talk without appearing to, they increasingly turn to smaller
            countries with a reputation for discretion. Over the past decade, a handful of states
            have turned mediation into a pillar of foreign policy, hosting talks on everything from
            prisoner exchanges to shipping corridors.
        """,
        details="""
            Their advantages are partly practical: a good airport, reliable security and officials
            who can keep a secret. They also benefit from having few enemies and no obvious stake
            in the outcome, which makes them acceptable to both sides. The role carries risks,
            however, since a failed mediation can damage relations with one party or both.
            Diplomats from these countries describe the work as patient and largely invisible,
            measured in meetings that never appear in the news.
        """,
        extra="""
            The model is not new. Neutral countries in Europe hosted much of the diplomacy of the
            Cold War, and their capitals are still home to international organisations. What has
            changed is the number of countries competing for the role and the range of disputes
            they handle. Gulf states, Nordic countries, Switzerland and several governments in
            Southeast Asia and Africa now run dedicated mediation units inside their foreign
            ministries, with staff trained in negotiation and budgets to pay for travel, security
            and, sometimes, the discreet accommodation of delegations that cannot be seen together.

            Mediators say the most valuable thing they offer is often logistical rather than
            political. A prisoner exchange requires aircraft that can land at the same airport at
            the same time, medical checks, consular officials and a way to verify identities
            without either side losing face. A shipping corridor needs inspectors, insurers and a
            channel for complaints that works at three in the morning. Small states that do these
            things well become the first call the next time, and each success adds to a reputation
            that larger countries, with more obvious interests, find hard to match. Failures, by
            contrast, are rarely made public, which makes the record difficult for outsiders to
            judge.

            Money matters too. Mediation is cheap compared with the cost of the conflicts it can
            help prevent, but it is not free, and the hosts usually pay. Officials from one Gulf
            state estimate that a single round of talks, with delegations flown in and housed for
            a week, can cost several million dollars once security is included. Governments
            justify the expense as an investment in influence: a country that helped negotiate a
            ceasefire or a hostage release gains access to leaders who might otherwise ignore it,
            and goodwill in international bodies where it needs votes. Critics at home sometimes
            ask why public money is spent on other people's quarrels, and the answer, diplomats
            admit, is rarely one that can be given in full.

            There are also limits to what small states can do. They cannot underwrite an agreement
            with troops or money on the scale that larger powers can, and they depend on the
            parties' wish to be seen as reasonable. When one side decides that it has more to gain
            from fighting than from talking, no venue, however comfortable, will bring it back to
            the table. Mediators describe their role as keeping a door open rather than pushing
            anyone through it. Several of the most successful recent efforts began as narrow,
            practical talks about prisoners, shipping or humanitarian access, and only later
            widened into discussions of the conflict itself.

            The trend is likely to continue. As rivalry between the largest powers hardens, the
            number of issues on which they cannot talk directly grows, and so does the demand for
            intermediaries. Some diplomats worry that mediation is becoming a crowded market, with
            competing hosts offering the same parties different venues and slowing agreement as a
            result. Others argue that choice is healthy, because a dispute that stalls in one
            capital can sometimes be revived in another. Either way, the small states that have
            invested in the role expect to be busy.
        """,
    ),
    ArticleSpec(
        title="Coalition Talks Stall as Parties Split Over Budget Rules",
        category="elections",
        author="lena-fischer",
        tags=("elections", "european-union"),
        desks=(),
        days_ago=15,
        excerpt="""
            Six weeks after an inconclusive election, negotiators remain divided on borrowing
            limits, delaying the formation of a new government.
        """,
        lead="""
            Negotiations to form a new government stalled this week after the three parties
            involved failed to agree on the country's borrowing rules, six weeks after an election
            that left no party close to a majority. The outgoing cabinet remains in office in a
            caretaker role.
        """,
        details="""
            The centre-left party wants to exempt investment in infrastructure and defence from the
            deficit limit, while its prospective partners insist the rule stay as it is.
            Negotiators have reached provisional agreement on several other chapters, including
            housing, migration and energy. A caretaker government can pay salaries and keep
            services running but cannot pass a new budget.
        """,
        extra="""
            The dispute goes to the heart of what each party promised voters. The centre-left
            campaigned on a large programme of public investment, arguing that roads, railways and
            schools had been neglected for a decade. Its likely partners, a liberal party and a
            regional party with strong support among small businesses, campaigned on keeping
            borrowing under control. Negotiators have floated compromises, including a separate
            investment fund with its own limit, but none has yet won the backing of all three
            leaderships. If the talks collapse, the head of state could ask another party to try
            to form a government or, as a last resort, call a new election.
        """,
    ),
    ArticleSpec(
        title="Record Early Turnout Reported in Regional Elections",
        category="elections",
        author="lena-fischer",
        tags=("elections", "european-union"),
        desks=("elections",),
        days_ago=24,
        excerpt="""
            More voters than ever cast their ballots before polling day, a shift officials
            attribute to simpler postal voting rules.
        """,
        lead="""
            More than a third of registered voters cast their ballots before polling day in this
            weekend's regional elections, the highest share on record, according to electoral
            officials. The increase follows reforms that made it easier to request a postal ballot
            online.
        """,
        details="""
            Officials said the rise was strongest among voters over sixty and among younger voters
            living away from home. Counting postal ballots takes longer, and officials warned that
            final results in close districts could take several days.
        """,
    ),
    ArticleSpec(
        title="Polls Tighten Ahead of Presidential Run-off",
        category="elections",
        author="oliver-scott",
        tags=("elections", "featured"),
        desks=("elections",),
        days_ago=3,
        featured=True,
        words=900,
        comments=64,
        excerpt="""
            The two remaining candidates are separated by little more than the margin of error,
            with a final televised debate still to come.
        """,
        lead="""
            The two candidates in the presidential run-off, due on 10 January, are now separated
            by less than three points, according to an average of recent polls, setting up the
            closest contest in a generation. Elena Varga, a former finance minister, led
            comfortably after the first round, but Tomas Reyes, a regional governor, has narrowed
            the gap.
        """,
        details="""
            Reyes has drawn support from voters who backed eliminated candidates, particularly in
            smaller towns and rural districts. Varga's campaign has focused on economic stability
            and her experience in government, while Reyes has promised a shake-up of public
            administration. A final televised debate is scheduled for next month, and both
            campaigns see it as a decisive moment. About one in ten voters remain undecided,
            according to the latest surveys.
        """,
        extra="""
            The first round produced few surprises: Varga finished well ahead, helped by strong
            turnout in the capital and the larger cities, while Reyes edged out three other
            candidates for second place by a narrow margin. Since then, two of the eliminated
            candidates have endorsed Reyes, and a third has told supporters to vote according to
            their conscience. Varga has picked up the backing of the main business associations
            and of several mayors who had stayed neutral in the first round. Both campaigns have
            shifted their advertising toward rural districts, where turnout was lowest last time.
        """,
    ),
    ArticleSpec(
        title="Young Voters Drive Surge in Registration Across Three Continents",
        category="elections",
        author="grace-mwangi",
        tags=("elections", "africa"),
        desks=(),
        days_ago=52,
        excerpt="""
            Voter registration among under-25s has risen sharply in several countries, helped by
            mobile registration drives and school programmes.
        """,
        lead="""
            Registration among voters under twenty-five has risen sharply ahead of elections in
            several countries in Africa, Latin America and Asia, according to a comparative study
            by a network of civic organisations. In some places, the number of first-time
            registrants has doubled since the last national vote.
        """,
        details="""
            Organisers credit mobile registration units that visit universities, markets and bus
            stations, as well as civic lessons in secondary schools. The study found that young
            people were most motivated by jobs, the cost of education and the quality of public
            services. Whether registration translates into turnout remains an open question, since
            young voters have historically been less likely to vote.
        """,
        extra="""
            The researchers looked at eleven countries that hold national elections over the next
            two years, comparing registration figures with those before the previous vote. The
            largest increases came where registration could be completed in a single visit with a
            national identity card, and where election authorities worked with schools and youth
            groups rather than relying on advertising. In countries that still require proof of
            address, registration among young people rose much more slowly, particularly among
            students and those who rent. The authors recommend that election commissions publish
            registration data by age group, so that progress can be tracked between elections.
        """,
    ),
    ArticleSpec(
        title="Electoral Commissions Prepare for a Season of Deepfakes",
        category="elections",
        author="rahul-mehta",
        tags=("elections", "artificial-intelligence", "regulation"),
        desks=("ai_policy",),
        days_ago=36,
        excerpt="""
            Election officials are setting up rapid-response teams to identify manipulated audio
            and video before it can spread.
        """,
        lead="""
            Electoral commissions in several countries are setting up rapid-response teams to deal
            with manipulated audio and video during campaigns, as cheaper tools make convincing
            fakes easier to produce. Officials say their aim is not to police political speech but
            to correct false information about how, when and where to vote.
        """,
        details="""
            Some commissions have signed agreements with platforms to fast-track takedown requests
            for content that impersonates officials. Researchers say that fake audio is
            particularly hard to detect and spreads quickly on messaging apps. Training for
            journalists and local officials in verification techniques is also part of the plans.
        """,
    ),
    ArticleSpec(
        title="Oil Prices Slip as Producers Signal Output Increase",
        category="commodities",
        author="daniel-kowalski",
        tags=("oil", "energy"),
        desks=("markets", "energy"),
        days_ago=4,
        excerpt="""
            Benchmark crude fell for a third day after major producers indicated they would add
            barrels to the market early next year.
        """,
        lead="""
            Oil prices fell for a third consecutive session after a group of major producers
            indicated that they would begin restoring withheld output in the first quarter of next
            year. Brent crude, the international benchmark, ended the day down nearly two percent.
        """,
        details="""
            The producers said the increase would be gradual and could be paused if market
            conditions weakened. Inventories in industrialised countries have been close to their
            five-year average, leaving little cushion for surprises. Refiners have been running at
            high rates to meet demand for diesel and jet fuel.
        """,
    ),
    ArticleSpec(
        title="Wheat Futures Climb on Black Sea Shipping Concerns",
        category="commodities",
        author="daniel-kowalski",
        tags=("food-security", "supply-chains"),
        desks=("markets",),
        days_ago=19,
        excerpt="""
            Grain prices rose after insurers raised premiums for vessels loading at Black Sea
            ports.
        """,
        lead="""
            Wheat futures rose to their highest level in two months after marine insurers raised
            premiums for vessels calling at Black Sea ports, adding to the cost of shipping grain
            from one of the world's main exporting regions. Corn prices also edged higher.
        """,
        details="""
            Traders said buyers in North Africa and the Middle East had stepped up purchases to
            secure supplies for the coming months. Harvests elsewhere have been good, which
            analysts said should limit how far prices can rise. Food-importing countries with
            limited foreign currency reserves are the most exposed to price spikes.
        """,
    ),
    ArticleSpec(
        title="Copper Demand From Grid Projects Tightens Metals Market",
        category="commodities",
        author="amara-nwosu",
        tags=("renewables", "supply-chains"),
        desks=("markets", "energy"),
        days_ago=29,
        excerpt="""
            Spending on power lines and transformers is absorbing a growing share of the world's
            copper supply.
        """,
        lead="""
            Investment in electricity grids is absorbing a growing share of the world's copper,
            tightening a market that was already stretched by slow growth in mine supply. Stocks in
            warehouses monitored by the main metals exchanges have fallen to their lowest level in
            over a year.
        """,
        details="""
            Power lines, transformers and substations all require large amounts of copper, and
            utilities on several continents are expanding their networks to connect new wind and
            solar farms. New mines take a decade or more to develop, and several large projects
            have been delayed by permitting disputes. Some manufacturers are turning to aluminium
            where possible, though it is a less efficient conductor.
        """,
    ),
    ArticleSpec(
        title="Cocoa Prices Ease After Record Year, but Farmers See Little Relief",
        category="commodities",
        author="grace-mwangi",
        tags=("africa", "food-security"),
        desks=("markets",),
        days_ago=44,
        excerpt="""
            Prices have fallen from their peak, but growers in West Africa say higher costs and
            diseased trees are eating into their income.
        """,
        lead="""
            Cocoa prices have fallen by about a third from the record highs reached earlier in the
            year, but farmers in West Africa say they have seen little of the windfall and now face
            rising costs for fertiliser and labour. Many trees in the region are old and affected
            by disease.
        """,
        details="""
            Farm-gate prices in the main producing countries are set by regulators, which cushions
            farmers when markets fall but also delays the benefit when they rise. Chocolate makers
            have raised retail prices and, in some cases, reduced the size of their products.
            Replanting programmes are under way, but new trees take several years to produce a full
            crop.
        """,
    ),
    ArticleSpec(
        title="Central Banks Hold Rates as Inflation Cools Unevenly",
        category="markets",
        author="amara-nwosu",
        tags=("central-banks", "inflation", "interest-rates", "featured"),
        desks=("markets",),
        days_ago=2,
        featured=True,
        excerpt="""
            Policymakers in several major economies kept borrowing costs unchanged, saying they need
            more evidence that price pressures are easing for good.
        """,
        lead="""
            Central banks in several of the world's largest economies left interest rates unchanged
            this month, saying that while inflation has fallen, progress has been uneven and
            services prices in particular remain stubborn. Markets had expected the decisions but
            paid close attention to the language that accompanied them.
        """,
        details="""
            Goods inflation has slowed sharply as supply chains have normalised, but wages and
            rents continue to push up the cost of services. Several policymakers signalled that
            cuts could come next year if the data cooperate, while others warned against moving too
            early. Mortgage holders and small businesses have felt the effect of higher rates most
            directly.
        """,
    ),
    ArticleSpec(
        title="Emerging-Market Currencies Rally as Dollar Softens",
        category="currencies",
        author="daniel-kowalski",
        tags=("central-banks", "interest-rates"),
        desks=("markets",),
        days_ago=11,
        excerpt="""
            A weaker dollar lifted currencies from Latin America to Asia, easing pressure on
            countries with dollar-denominated debts.
        """,
        lead="""
            Emerging-market currencies posted their strongest week in months as the dollar weakened
            against most of its peers, helped by expectations that US interest rates have peaked.
            Currencies in Latin America led the gains, followed by several in South and Southeast
            Asia.
        """,
        details="""
            A weaker dollar reduces the cost of servicing dollar-denominated debt, which is
            substantial for many emerging-market governments and companies. Investors have returned
            to local-currency bonds, attracted by high real interest rates in several countries.
            Central banks that spent reserves defending their currencies last year have started to
            rebuild them.
        """,
    ),
    ArticleSpec(
        title="Yen Weakens Past Key Level, Raising Intervention Speculation",
        category="currencies",
        author="hiroshi-tanaka",
        tags=("central-banks", "interest-rates"),
        desks=("markets",),
        days_ago=26,
        excerpt="""
            Japan's currency slid to a level that has prompted action from the authorities in the
            past, and officials issued a verbal warning.
        """,
        lead="""
            The Japanese yen weakened past a level that has prompted intervention by the
            authorities in the past, leading a senior finance ministry official to warn that
            excessive currency moves were undesirable. The currency later recovered some of its
            losses.
        """,
        details="""
            The gap between interest rates in Japan and those in other major economies has been the
            main force pushing the yen lower. A weaker yen helps exporters but raises the cost of
            imported food and energy for households. Traders said they were reluctant to push the
            currency much further given the risk of official action.
        """,
    ),
    ArticleSpec(
        title="Middle Corridor Freight Volumes Double as Shippers Seek Alternatives",
        category="trade",
        author="nadia-rahimova",
        tags=("central-asia", "azerbaijan", "trade", "supply-chains", "regional-integration"),
        desks=("central_asia", "logistics"),
        days_ago=17,
        words=1150,
        excerpt="""
            Cargo on the trans-Caspian route between China and Europe has doubled in two years,
            though it remains small compared with sea freight.
        """,
        lead="""
            Freight moving along the Middle Corridor, the route that links China to Europe through
            Kazakhstan, the Caspian Sea, Azerbaijan and Georgia, has roughly doubled over the past
            two years, according to figures from the route's operators. Shippers say they are
            looking for alternatives to longer sea routes and to the northern rail corridor.
        """,
        details="""
            Volumes remain a small fraction of the cargo carried by sea, and capacity at the
            Caspian ports is limited. Operators have begun offering fixed schedules and single
            through-tariffs, which customers say make the route easier to plan. The slowest part
            of the journey is usually the sea crossing, where ferries often wait to fill up before
            departing.
        """,
        extra="""
            The route is a chain of handovers. Containers travel by rail from the Chinese border
            across Kazakhstan to the Caspian ports of Aktau or Kuryk, are loaded onto ferries for
            the crossing to Alat near Baku, continue by rail through Azerbaijan and Georgia, and
            then either cross the Black Sea or head overland into Türkiye. Each handover involves a
            different operator, a different gauge or vessel and, until recently, a different set
            of paperwork. The operators' joint venture now sells a single ticket for the whole
            journey, which shippers say has done more to win business than any single investment.

            Capacity is the constraint. The Caspian ferry fleet is small and ageing, and new
            vessels take years to build. Ports on both shores are being expanded, and Georgia is
            upgrading its rail line through the mountains, but the work will take most of the
            decade. In the meantime, operators are trying to squeeze more out of existing assets
            with better scheduling and shared tracking data, so that a ferry leaves when a train is
            due rather than when it happens to be full.
        """,
    ),
    ArticleSpec(
        title="EU and Southeast Asian Partners Reopen Free Trade Negotiations",
        category="trade",
        author="lena-fischer",
        tags=("trade", "european-union"),
        desks=("negotiation", "trade_policy"),
        days_ago=38,
        excerpt="""
            Talks that were suspended years ago are back on, with sustainability and access for
            farm goods the hardest issues.
        """,
        lead="""
            The European Union and a group of Southeast Asian economies have formally relaunched
            negotiations on a free trade agreement, years after talks were put on hold. Negotiators
            met for a first round in Brussels and agreed on a work programme for the coming year.
        """,
        details="""
            Chapters on sustainability, including deforestation and labour rights, are expected to
            be among the most difficult. European farmers are wary of opening their markets
            further, while Southeast Asian governments want better access for agricultural
            exports. Both sides also want to cooperate on critical minerals and the supply chains
            for batteries.
        """,
    ),
    ArticleSpec(
        title="Port Congestion Eases but Shipping Rates Stay Elevated",
        category="trade",
        author="daniel-kowalski",
        tags=("supply-chains", "trade"),
        desks=("logistics",),
        days_ago=31,
        excerpt="""
            Fewer ships are waiting outside major ports, yet container freight costs remain well
            above their long-term average.
        """,
        lead="""
            The number of container ships waiting to enter major ports has fallen to its lowest
            level this year, but freight rates remain well above their long-term average as
            carriers continue to sail longer routes. Importers say that reliability has improved
            even as costs stay high.
        """,
        details="""
            Carriers have added new vessels to their fleets, but much of that capacity is absorbed
            by longer voyages. Schedule reliability, the share of ships arriving on time, has
            improved for five consecutive months. Retailers have begun ordering earlier to avoid
            being caught short during busy seasons.
        """,
    ),
    ArticleSpec(
        title="Tariff Truce Nears Expiry With No Deal in Sight",
        category="trade",
        author="amara-nwosu",
        tags=("trade", "china"),
        desks=("negotiation", "trade_policy"),
        days_ago=10,
        excerpt="""
            A temporary pause on new tariffs expires on 15 November, and negotiators have yet to
            agree on whether to extend it.
        """,
        lead="""
            A temporary truce that has kept a new round of tariffs on hold is due to expire on 15
            November, and negotiators have yet to say whether it will be extended. Officials from
            both sides met by video link this week but issued no statement afterwards.
        """,
        details="""
            Businesses on both sides have been stockpiling goods in case tariffs rise when the
            truce ends. People familiar with the talks said a short extension was possible, but
            that disagreements over export controls remained. Economists estimate that the
            tariffs, if imposed in full, would raise prices for a wide range of consumer
            electronics and household goods.
        """,
    ),
    ArticleSpec(
        title="Caspian Gas Pipeline Expansion Moves Toward Final Investment Decision",
        category="energy",
        author="nadia-rahimova",
        tags=("azerbaijan", "energy", "european-union"),
        desks=("energy",),
        days_ago=22,
        excerpt="""
            Partners in the project say a decision on expanding capacity could come next year,
            provided buyers sign long-term contracts.
        """,
        lead="""
            Partners in the pipeline that carries Caspian gas to Europe said they were moving
            toward a final investment decision on expanding its capacity, a step that depends on
            European buyers signing long-term contracts. Engineering studies for the expansion
            have been completed.
        """,
        details="""
            The expansion would add compressor stations along the existing route rather than lay a
            new line, keeping costs lower. European utilities have been cautious about long-term
            commitments because of their own targets for cutting gas use. Azerbaijan's energy
            ministry said additional supplies from new offshore fields would be available later in
            the decade.
        """,
    ),
    ArticleSpec(
        title="Europe Enters Winter With Gas Storage Near Capacity",
        category="energy",
        author="lena-fischer",
        tags=("energy", "european-union"),
        desks=("energy",),
        days_ago=14,
        excerpt="""
            Storage sites are almost full, but analysts warn that a cold snap could still drain
            reserves quickly.
        """,
        lead="""
            Gas storage sites across the European Union are almost full as the heating season
            begins, giving the region a comfortable cushion for the winter months. Prices at the
            main European trading hub are lower than at the same point last year.
        """,
        details="""
            Storage alone covers only part of winter demand, so imports of liquefied natural gas
            remain essential. Analysts said a prolonged cold spell across northern Europe could
            still draw reserves down quickly. Governments have extended measures that encourage
            industry and households to save energy.
        """,
    ),
    ArticleSpec(
        title="Solar Installations Outpace Forecasts for Third Straight Year",
        category="energy",
        author="sofia-alvarez",
        tags=("renewables", "energy", "climate-change"),
        desks=("energy",),
        days_ago=35,
        excerpt="""
            Cheaper panels have driven another year of record installations, though grid
            connections are becoming a bottleneck.
        """,
        lead="""
            Solar power installations around the world are on course to exceed forecasts for the
            third year running, driven by a steep fall in the price of panels and strong demand
            from households and businesses. Industry groups expect another record next year.
        """,
        details="""
            In several markets, the main constraint is no longer the cost of equipment but the wait
            for a grid connection. Battery storage is increasingly installed alongside solar farms
            so that electricity can be supplied after sunset. Manufacturers have struggled with low
            prices, and some smaller producers have gone out of business.
        """,
    ),
    ArticleSpec(
        title="Global Growth Forecast Trimmed as Trade Slows",
        category="trade",
        author="amara-nwosu",
        tags=("trade", "inflation"),
        desks=("trade_policy",),
        days_ago=50,
        excerpt="""
            An international forecaster lowered its outlook for next year, citing weaker trade and
            the lingering effect of high interest rates.
        """,
        lead="""
            An international economic organisation has lowered its forecast for global growth next
            year, citing slowing trade, the lingering effect of higher interest rates and
            uncertainty over tariffs. The revision was small, but the organisation said the risks
            were tilted to the downside.
        """,
        details="""
            Growth in large emerging economies is expected to hold up better than in advanced
            economies. The report urged governments to rebuild budget buffers while protecting
            investment in education and infrastructure. It also warned that high public debt in
            many countries limits the room for support if a downturn arrives.
        """,
    ),
    ArticleSpec(
        title="Regulators Publish First Audit Rules for High-Risk AI Systems",
        category="ai",
        author="rahul-mehta",
        tags=("artificial-intelligence", "regulation", "european-union", "featured"),
        desks=("ai_policy",),
        days_ago=5,
        featured=True,
        words=1000,
        comments=28,
        excerpt="""
            Companies deploying AI in hiring, lending and healthcare will have to document testing,
            keep logs and allow independent audits.
        """,
        lead="""
            Regulators have published the first detailed rules on how high-risk artificial
            intelligence systems must be audited, setting out what companies must document and
            test before deploying AI in areas such as hiring, lending and healthcare. The rules
            follow a year of consultation with industry and civil society.
        """,
        details="""
            Providers will have to keep records of the data used to train their systems, log
            decisions in ways that can be reviewed, and report serious incidents within fifteen
            days. Independent auditors must be accredited and may not have worked for the company
            they audit in the previous two years. Small companies will be able to use simplified
            templates and shared testing facilities.
        """,
        extra="""
            The rules distinguish between providers, who build a system, and deployers, who use it
            in their own operations. Providers carry most of the documentation duties, including a
            description of the data used for training and testing, the known limitations of the
            system and the measures taken to reduce bias. Deployers must check that a system is
            used for the purpose it was designed for, keep its logs for at least six months and
            make sure that a person with the right training can override its output. Systems
            already on the market get an additional year to comply.

            Much will depend on the auditors themselves. Accreditation bodies say they have
            received applications from testing laboratories, consulting firms and university
            groups, but that few have experience of evaluating machine learning systems. Regulators
            have promised reference test suites for common tasks such as document screening and
            credit scoring, which would give auditors a shared starting point. Critics note that
            the rules say little about general-purpose models adapted for high-risk uses by someone
            other than their original developer.
        """,
    ),
    ArticleSpec(
        title="Open-Weight Language Models Close Gap With Commercial Rivals",
        category="ai",
        author="rahul-mehta",
        tags=("artificial-intelligence", "research"),
        desks=("ai_policy",),
        days_ago=18,
        excerpt="""
            Freely downloadable models now perform close to the best commercial systems on many
            benchmarks, changing the economics of AI.
        """,
        lead="""
            Language models whose weights are freely available to download now perform close to
            the leading commercial systems on many widely used benchmarks, according to an
            independent evaluation. The gap, which was large two years ago, has narrowed to a few
            percentage points on most tasks.
        """,
        details="""
            The evaluation found that commercial systems still lead on complex reasoning and on
            long documents. Businesses say open models let them run AI on their own servers, which
            matters for sensitive data. Critics worry that freely available models are harder to
            control once released.
        """,
    ),
    ArticleSpec(
        title="Hospitals Trial AI Triage Tools Amid Safety Questions",
        category="ai",
        author="claire-dubois",
        tags=("artificial-intelligence", "public-health"),
        desks=("ai_policy", "health"),
        days_ago=41,
        excerpt="""
            Emergency departments are testing software that ranks patients by urgency, but doctors
            want clear evidence before relying on it.
        """,
        lead="""
            Several hospitals have begun trials of software that helps emergency department staff
            decide which patients to see first, using artificial intelligence to analyse symptoms
            and vital signs. Doctors involved say the tools are meant to support, not replace,
            clinical judgement.
        """,
        details="""
            In the trials, the software's recommendation is shown to a nurse, who makes the final
            decision and records whether they agreed. Researchers will compare waiting times and
            outcomes with those in departments that do not use the tool. Patient groups have asked
            how the systems were tested on people of different ages and backgrounds.
        """,
    ),
    ArticleSpec(
        title="Chipmakers Expand Capacity as Demand for AI Hardware Persists",
        category="ai",
        author="rahul-mehta",
        tags=("semiconductors", "artificial-intelligence", "supply-chains"),
        desks=("chips",),
        days_ago=25,
        excerpt="""
            Manufacturers are adding advanced packaging lines, the current bottleneck in producing
            chips for data centres.
        """,
        lead="""
            Chipmakers are expanding production of the processors used to train and run AI
            systems, with much of the new investment going into advanced packaging, the process of
            assembling several chips into a single unit. Lead times for the most advanced hardware
            remain long.
        """,
        details="""
            Packaging capacity, rather than the chips themselves, has been the main bottleneck for
            much of the past year. Data centre operators are signing multi-year supply agreements
            to secure hardware. The power needed to run large data centres has become a growing
            concern for utilities.
        """,
    ),
    ArticleSpec(
        title="Ransomware Attack Disrupts Port Logistics for Four Days",
        category="cybersecurity",
        author="rahul-mehta",
        tags=("cybersecurity", "supply-chains"),
        desks=("cyber", "logistics"),
        days_ago=8,
        excerpt="""
            A cyberattack on a terminal operator's systems forced staff back to paper, delaying
            thousands of containers.
        """,
        lead="""
            A ransomware attack on the systems of a major container terminal operator disrupted
            operations for four days, forcing staff to process cargo manually and delaying
            thousands of containers. The company said it had not paid a ransom and that its systems
            had been restored from backups.
        """,
        details="""
            Trucks queued for hours outside the terminal gates while staff checked paperwork by
            hand. Investigators believe the attackers got in through a compromised account at a
            software supplier. Port authorities have asked all operators to review their access
            controls and backup procedures.
        """,
    ),
    ArticleSpec(
        title="Governments Agree Voluntary Norms to Protect Undersea Cables",
        category="cybersecurity",
        author="oliver-scott",
        tags=("cybersecurity", "diplomacy", "united-nations"),
        desks=("cyber", "accord"),
        days_ago=43,
        excerpt="""
            A group of countries has agreed on principles for protecting and repairing the cables
            that carry most international data traffic.
        """,
        lead="""
            More than thirty governments have endorsed a set of voluntary principles for protecting
            undersea communications cables, which carry the vast majority of international internet
            traffic. The principles cover faster repairs, information sharing after incidents and
            the security of landing stations.
        """,
        details="""
            Several cables have been damaged in recent years, in some cases by ships dragging their
            anchors. Repair ships are scarce, and a single damaged cable can take weeks to fix. The
            principles are not binding, but supporters hope they will form the basis for future
            agreements.
        """,
    ),
    ArticleSpec(
        title="Lunar Lander Mission Enters Final Testing Phase",
        category="space",
        author="sofia-alvarez",
        tags=("space", "research"),
        desks=("space",),
        days_ago=30,
        excerpt="""
            Engineers have begun vibration and thermal tests that simulate launch and the cold of
            the lunar night.
        """,
        lead="""
            Engineers have started the final round of tests on a robotic lunar lander, subjecting
            the spacecraft to the vibration of launch and the extreme temperatures it will face on
            the Moon. If the tests go well, the lander will be shipped to the launch site early
            next year.
        """,
        details="""
            The lander is designed to touch down near the Moon's south pole, where scientists
            believe ice may be trapped in permanently shadowed craters. It carries instruments from
            several countries, including a drill and a small rover.
        """,
    ),
    ArticleSpec(
        title="Satellite Internet Reaches Remote Steppe Communities",
        category="space",
        author="nadia-rahimova",
        tags=("space", "central-asia"),
        desks=(),
        days_ago=48,
        excerpt="""
            Schools, clinics and herders in sparsely populated areas are getting broadband for the
            first time.
        """,
        lead="""
            Satellite internet service has reached dozens of remote villages across the Central
            Asian steppe, connecting schools, clinics and herding communities that were previously
            far beyond the reach of fixed or mobile networks. The rollout is part of a government
            programme to close the digital divide.
        """,
        details="""
            Terminals are installed at schools and health posts, which share the connection with
            nearby households. Teachers say students can now join online classes, and doctors in
            regional hospitals can consult colleagues by video. The service is subsidised, and
            officials have not said how long the support will continue.
        """,
        extra="""
            In one village visited for this report, a settlement of about three hundred people some
            four hours by road from the nearest city, the school's connection is used in the
            evenings by families calling relatives working abroad. Herders use it to check weather
            forecasts and livestock prices before driving animals to market. The local clinic now
            sends test results to a regional hospital the same day instead of waiting for a weekly
            courier. Residents say the connection slows down in heavy snow, and that the terminals
            need a reliable power supply, which in some villages still means a diesel generator.
        """,
    ),
    ArticleSpec(
        title="Semiconductor Export Controls Reshape Supply Chains",
        category="trade",
        author="rahul-mehta",
        tags=("semiconductors", "china", "supply-chains"),
        desks=("chips", "trade_policy"),
        days_ago=55,
        excerpt="""
            Tighter rules on selling advanced chips and chipmaking tools are pushing companies to
            split their supply chains.
        """,
        lead="""
            Tighter restrictions on exports of advanced chips and the equipment used to make them
            are pushing technology companies to reorganise their supply chains, with some building
            separate production lines for different markets. Industry executives say the rules
            have added cost and complexity.
        """,
        details="""
            Equipment makers have lost sales in some markets but gained orders elsewhere as
            countries build domestic capacity. Companies must now check not only what they sell
            but who the final user is, a task that requires new compliance teams. Analysts say the
            controls have slowed but not stopped the development of advanced chips in the targeted
            countries.
        """,
    ),
    ArticleSpec(
        title="Glacier Loss in High Asia Accelerates, Study Finds",
        category="climate",
        author="sofia-alvarez",
        tags=("climate-change", "central-asia", "research"),
        desks=("climate",),
        days_ago=23,
        excerpt="""
            Glaciers in the mountains of Central and South Asia are losing ice faster than a decade
            ago, with consequences for the rivers downstream.
        """,
        lead="""
            Glaciers in the high mountains of Central and South Asia are losing ice significantly
            faster than they were a decade ago, according to a study that combined satellite
            measurements with field surveys. The findings have implications for the rivers that
            supply water to farms and cities downstream.
        """,
        details="""
            The study found the fastest losses in the Tien Shan and Pamir ranges, which feed the
            rivers of Central Asia. In the short term, faster melting can increase river flows, but
            the researchers warn that flows will decline once glaciers shrink past a certain point.
        """,
    ),
    ArticleSpec(
        title="This Year's Heatwave Season Ran Longer Than Any on Record",
        category="climate",
        author="sofia-alvarez",
        tags=("climate-change", "public-health"),
        desks=("climate", "health"),
        days_ago=53,
        excerpt="""
            Meteorologists say heatwaves began earlier and ended later than in any year since
            records began.
        """,
        lead="""
            The season of extreme heat in the Northern Hemisphere began earlier and ended later
            this year than in any year since reliable records began, according to a review by
            meteorological agencies. Several countries recorded their highest temperatures ever
            measured.
        """,
        details="""
            Nights were especially warm, which doctors say is dangerous because the body cannot
            recover from the heat of the day. Cities with heat action plans, including cooling
            centres and alerts for vulnerable residents, reported fewer hospital admissions.
        """,
    ),
    ArticleSpec(
        title="Caspian Sea Level Falls to Lowest in Decades",
        category="oceans",
        author="nadia-rahimova",
        tags=("climate-change", "azerbaijan", "central-asia"),
        desks=("climate",),
        days_ago=37,
        excerpt="""
            The shrinking sea is exposing shoreline, stranding ports and threatening the habitats
            of seals and sturgeon.
        """,
        lead="""
            The level of the Caspian Sea has fallen to its lowest point in decades, exposing wide
            stretches of seabed along its shallow northern coast and forcing ports to dredge their
            channels. Scientists attribute the decline mainly to higher evaporation and reduced
            inflow from rivers.
        """,
        details="""
            The northern Caspian is shallow, so even a small drop in level moves the shoreline by
            kilometres. Port operators in Kazakhstan and Azerbaijan have had to reduce the loads
            carried by some ships. Conservationists warn that the Caspian seal, found nowhere else,
            depends on winter ice in the north for breeding.
        """,
    ),
    ArticleSpec(
        title="Marine Heatwaves Push Coral Bleaching Into Deeper Waters",
        category="oceans",
        author="sofia-alvarez",
        tags=("climate-change", "research"),
        desks=("climate",),
        days_ago=58,
        excerpt="""
            Researchers have found bleached corals at depths once thought to offer refuge from
            warming seas.
        """,
        lead="""
            Coral bleaching caused by marine heatwaves is now reaching depths that scientists had
            hoped would act as a refuge from warming surface waters, according to surveys by
            research divers. Bleaching was recorded more than thirty metres below the surface at
            several sites.
        """,
        details="""
            Corals bleach when stressed by heat, expelling the algae that give them their colour and
            much of their food. Some reefs recover if temperatures fall quickly, but repeated
            heatwaves leave little time for recovery.
        """,
    ),
    ArticleSpec(
        title="New Malaria Vaccine Rollout Reaches Ten Countries",
        category="health",
        author="claire-dubois",
        tags=("public-health", "africa", "featured"),
        desks=("health",),
        days_ago=7,
        featured=True,
        excerpt="""
            Millions of children are now eligible for a vaccine that, combined with bed nets, is
            cutting severe cases.
        """,
        lead="""
            A programme to vaccinate young children against malaria has now reached ten countries,
            with millions of doses delivered and early data suggesting fewer hospital admissions in
            areas where the vaccine has been introduced. Health officials say it works best
            alongside bed nets and prompt treatment.
        """,
        details="""
            The vaccine is given in four doses, and keeping children on schedule for all of them is
            one of the main challenges. Manufacturers have increased production, which has lowered
            the price per dose. Countries with seasonal malaria are timing vaccination campaigns to
            finish before the rainy season.
        """,
    ),
    ArticleSpec(
        title="Antibiotic Resistance Study Maps Hidden Burden in Hospitals",
        category="health",
        author="claire-dubois",
        tags=("public-health", "research"),
        desks=("health",),
        days_ago=46,
        excerpt="""
            A large study suggests infections resistant to common antibiotics are more widespread
            than official figures show.
        """,
        lead="""
            Infections that no longer respond to common antibiotics are more widespread in
            hospitals than official figures suggest, according to a study of laboratory records
            from several hundred hospitals. The authors say that many cases are never reported to
            national surveillance systems.
        """,
        details="""
            Resistance was highest in intensive care units, where patients are sickest and
            antibiotics are used most heavily. The study calls for better laboratory capacity, so
            that doctors can quickly identify which drugs will work.
        """,
    ),
    ArticleSpec(
        title="Air Quality Alerts Return as Cities Enter Winter",
        category="health",
        author="claire-dubois",
        tags=("public-health", "climate-change"),
        desks=("health",),
        days_ago=1,
        excerpt="""
            Heating, traffic and still weather are pushing pollution above safe levels in several
            large cities.
        """,
        lead="""
            Air quality alerts have returned to several large cities as colder weather brings more
            heating, heavier traffic and still air that traps pollution near the ground.
            Authorities have advised children, older people and those with heart or lung conditions
            to limit time outdoors.
        """,
        details="""
            Fine particles, small enough to enter the bloodstream, are the pollutant of greatest
            concern to doctors. Some cities have introduced temporary restrictions on traffic and
            on burning coal and wood for heating.
        """,
    ),
    ArticleSpec(
        title="Uzbekistan Unveils Plan to Modernise Rail Links With Neighbours",
        category="central-asia",
        author="nadia-rahimova",
        tags=("central-asia", "trade", "regional-integration"),
        desks=("central_asia", "logistics"),
        days_ago=28,
        excerpt="""
            The plan includes electrifying main lines and building a new cross-border link to
            shorten freight routes to the south.
        """,
        lead="""
            Uzbekistan has unveiled a plan to modernise its rail links with neighbouring countries,
            including electrification of its main lines and a new cross-border connection that
            would shorten freight routes to the south. The government says the plan will be
            financed through a mix of public funds and loans from development banks.
        """,
        details="""
            New signalling systems would allow trains to run faster and more often on existing
            lines. Officials said the country aims to cut the time needed to move freight across its
            territory by a third. Neighbouring governments have been invited to coordinate
            timetables and customs checks at the border.
        """,
    ),
    ArticleSpec(
        title="Kyrgyz Hydropower Project Secures Regional Financing",
        category="central-asia",
        author="nadia-rahimova",
        tags=("central-asia", "energy", "renewables"),
        desks=("central_asia", "energy"),
        days_ago=42,
        excerpt="""
            A long-planned dam on the Naryn River has won backing from neighbouring states, which
            will buy part of its electricity.
        """,
        lead="""
            A long-planned hydropower project on the Naryn River in Kyrgyzstan has secured
            financing from a group of regional partners, who will buy part of its electricity in
            return. The project, discussed for decades, had repeatedly stalled over funding and the
            concerns of downstream countries.
        """,
        details="""
            Under the arrangement, the dam will release water in summer to meet irrigation needs
            downstream, and store it in winter when Kyrgyzstan needs power most. The project is
            expected to take about a decade to build. Environmental groups have asked for an
            independent assessment of its effects on the river and on local communities.
        """,
    ),
    ArticleSpec(
        title="Typhoon Recovery Effort Strains Island Supply Lines",
        category="east-asia",
        author="hiroshi-tanaka",
        tags=("climate-change", "supply-chains"),
        desks=(),
        days_ago=16,
        excerpt="""
            Damaged ports and roads are slowing deliveries of food, fuel and building materials to
            islands hit by last week's storm.
        """,
        lead="""
            Recovery efforts on islands hit by last week's typhoon are being slowed by damaged
            ports and roads, making it difficult to deliver food, fuel and building materials to
            the worst-affected communities. Military vessels have been deployed to carry supplies.
        """,
        details="""
            Power has been restored to most homes on the main islands, but smaller communities
            could wait weeks. Authorities said early evacuations had limited the number of
            casualties. Insurers are still assessing the damage, which is expected to be among the
            costliest for the region in recent years.
        """,
        extra="""
            The storm made landfall with sustained winds of more than 180 kilometres an hour,
            bringing down power lines, flattening crops and damaging piers on several of the
            smaller islands. Ferry services, the lifeline for island communities, were suspended
            for three days and have resumed only partly, because some ports can take only smaller
            vessels until debris is cleared. Aid agencies say drinking water is the most urgent
            need, followed by roofing materials before the next rains. Local officials have asked
            the national government to speed up payments from its disaster fund, which in past
            storms took months to reach households.
        """,
    ),
    ArticleSpec(
        title="European Parliament Backs Stricter Rules on Critical Raw Materials",
        category="europe",
        author="lena-fischer",
        tags=("european-union", "supply-chains", "regulation"),
        desks=("trade_policy",),
        days_ago=32,
        excerpt="""
            Lawmakers voted to speed up permits for mining and recycling projects while tightening
            checks on where materials come from.
        """,
        lead="""
            The European Parliament has voted in favour of stricter rules on critical raw
            materials, combining faster permits for mining and recycling projects with tighter
            checks on where imported materials come from. The measures aim to reduce dependence on
            a small number of suppliers.
        """,
        details="""
            Lithium, rare earths and other materials used in batteries, wind turbines and
            electronics are covered by the rules. Recycling targets would require a growing share
            of these materials to be recovered from used products. Environmental groups welcomed
            the recycling provisions but warned that faster permits must not weaken the protection
            of nature.
        """,
    ),
    ArticleSpec(
        title="East African Rail Line Opens Final Section to Freight",
        category="africa",
        author="grace-mwangi",
        tags=("africa", "trade", "regional-integration"),
        desks=("logistics",),
        days_ago=57,
        excerpt="""
            Completion of the line cuts journey times between the coast and inland markets from
            days to hours.
        """,
        lead="""
            The final section of a rail line linking an East African port with inland markets has
            opened to freight, cutting journey times for containers from several days by road to
            less than a day by train. Officials say the line will lower transport costs for
            landlocked neighbours.
        """,
        details="""
            Trucking companies, which currently carry most of the cargo, have asked for time to
            adjust. The line uses electric locomotives, reducing fuel costs and emissions.
            Operators plan to add passenger services next year.
        """,
    ),
)


# --------------------------------------------------------------------------------------------
# Comments: generated threads from pools, and one hand-written thread for the showcase article
# --------------------------------------------------------------------------------------------

TOP_COMMENTS_GENERAL: tuple[str, ...] = (
    "Good summary. I'd like to see a follow-up in six months to check what actually happened.",
    "The **headline** oversells it a little, but the reporting itself is solid.",
    "Interesting that nobody quoted in the piece disputes the facts, only the timing.",
    "I read this twice and I'm still not sure who pays for it. Can anyone explain?",
    "Finally some reporting that doesn't treat this as a sideshow.",
    "Useful background: [a longer explainer](https://example.org/explainers) covers the history.",
    "Three things I'd want to know:\n\n- who signed off on it\n- what it costs\n"
    "- what happens if it fails",
    "This is one of those stories that will matter much more in five years than it does today.",
    "Would love a map with this. Hard to follow the geography otherwise.",
    "Well written. The quotes say more than the official statement does.",
    "I'm sceptical. We've seen announcements like this before and the follow-through is *slow*.",
    "Thanks for explaining the background instead of assuming everyone already knows it.",
    "Honest question: is there any data on how similar plans worked elsewhere?",
    "Bookmarking this. **Very** relevant to my work.",
    "More of this kind of reporting please, fewer hot takes.",
    "Clear and calm. Rare these days.",
)

TOP_COMMENTS_BY_DESK: dict[str, tuple[str, ...]] = {
    "accord": (
        "Small steps, but diplomacy is mostly small steps. I'll take it.",
        "The real test is whether the working groups actually meet. They usually don't.",
        "Nice to see a story about countries *agreeing* on something for once.",
        "Statements like this are cheap. Show me the budget lines.",
    ),
    "central_asia": (
        "Having driven through those border crossings, **anything** that shortens the queues "
        "is welcome.",
        "People underestimate how much the region has changed in ten years. Good to see it "
        "covered.",
        "The water question is the elephant in the room. Transport is the easy part.",
        "My family's business ships through Aktau. Ferry schedules are the bottleneck, not "
        "politics.",
    ),
    "elections": (
        "Polls have been wrong before. Everyone should just go and vote.",
        "The debates barely touched on housing, which is what everyone I know talks about.",
        "Turnout will decide this, not the last week of adverts.",
        "I voted early by post this year and it took five minutes. Highly recommended.",
        "A three-point gap is basically a coin toss once you account for the margin of error.",
        "Undecided voters in the small towns will settle it. They always do.",
        "Debates rarely change minds, they mostly confirm what people already think.",
        "Whoever wins, the parliament arithmetic is going to make governing hard.",
    ),
    "markets": (
        "Markets were pricing this in for weeks. The surprise would have been the opposite.",
        "Every move gets a story after the fact. Sometimes prices just go up and down.",
        "A five-year chart would be more useful here than a five-month one.",
        "The forecasts change every time the data do. That's not forecasting.",
    ),
    "negotiation": (
        "Deadlines focus minds. I'd bet on a last-minute fudge.",
        "Every round ends with 'progress was made'. Progress on what, exactly?",
        "The sticking points haven't changed in years. Not optimistic.",
        "Walking away without a statement is at least honest.",
    ),
    "logistics": (
        "Shipping costs are still absurd compared with 2019. Nobody talks about that.",
        "We moved some routes to rail last year. Slower than air, cheaper, surprisingly reliable.",
        "Reliability matters more than speed for most of our customers.",
        "Ports and railways are only as fast as the slowest border post.",
    ),
    "trade_policy": (
        "Paperwork, not tariffs, is what kills small exporters. Glad the article says so.",
        "Rules of origin are the boring part that decides everything.",
        "Tariffs are a tax on your own consumers, whichever way you slice it.",
        "I'd like to see which sectors actually gain from this.",
    ),
    "energy": (
        "Storage levels are half the story. What matters is how cold January gets.",
        "We need the grid upgrades more than new generation at this point.",
        "Another pipeline? I'd rather see the money go into storage and efficiency.",
        "My energy bill is still almost double what it was. Averages hide a lot.",
    ),
    "ai_policy": (
        "Audits are only as good as the people doing them. Who trains the auditors?",
        "The gap between demos and production systems is still huge. I work in this field.",
        "Rules about processes rather than specific models are the right call.",
        "Open models are the only way independent researchers can check any of these claims.",
    ),
    "chips": (
        "Subsidies for chip factories everywhere. Someone will end up with overcapacity.",
        "Packaging being the bottleneck is the most interesting detail here.",
        "Export controls slow things down, they never stop them for long.",
    ),
    "cyber": (
        "Backups saved them. Test your restores, people.",
        "Supplier accounts are always the weak point.",
        "Voluntary norms are better than nothing, but not by much.",
    ),
    "space": (
        "Delays are normal. I'd rather they slip a year than lose the lander.",
        "Satellite internet changed my parents' village completely. Video calls, finally.",
        "Space debris is going to be the big story of the next decade.",
        "The engineering in these missions is incredible. Nice to see it covered properly.",
    ),
    "climate": (
        "The data keep pointing the same way. At some point we have to act like we believe it.",
        "Adaptation money is always promised and rarely delivered.",
        "Would be good to link the study. Is it [this one](https://example.org/study)?",
        "People living downstream already know all this. The research just makes it official.",
    ),
    "health": (
        "Great news. The hard part is always the last mile, getting it to remote villages.",
        "My sister is a nurse and says staffing is the real constraint, not supply.",
        "Trial results versus real-world results: let's wait and see.",
        "Prevention budgets are always the first to be cut. Hope that doesn't happen here.",
    ),
}

# Appended to a top-level comment when an article has used up its pool.
TOP_COMMENT_TAILS: tuple[str, ...] = (
    "Just my two cents.",
    "Curious what others think.",
    "Anyway, good piece.",
    "Happy to be proven wrong.",
    "Will be following this one.",
    "Thanks for the reporting.",
)

# A reply is an opener followed by a point; "{parent}" is the parent comment's author.
REPLY_OPENERS: tuple[str, ...] = (
    "Agreed.",
    "I'm not so sure.",
    "Good point, @{parent}.",
    "@{parent} I see it differently.",
    "Exactly this.",
    "Partly true.",
    "Respectfully, no.",
    "@{parent} thanks, that's helpful.",
    "Hmm.",
    "Same here.",
)

REPLY_POINTS: tuple[str, ...] = (
    "The details matter more than the announcement.",
    "It depends a lot on who ends up implementing it.",
    "The article does mention that in the second half.",
    "There's a longer discussion of this [here](https://example.org/discussion).",
    "I'd wait for the next set of figures before drawing conclusions.",
    "That was true a few years ago, but the situation has changed.",
    "We'll know within a year whether it worked.",
    "People on the ground seem much more positive than the commentators.",
    "The cost estimates always go up, never down.",
    "It's not either-or; both things can be true.",
    "**Timing** is the whole story here.",
    "Local conditions vary so much that averages don't tell you much.",
    "That's the part I'd like the reporter to follow up on.",
    "History suggests caution, but not cynicism.",
    "If the money is there, I think it gets done.",
    "I changed my mind on this after reading the piece, for what it's worth.",
    "Nobody has a perfect record on predictions like this.",
    "Worth reading the full statement, it's more specific than the summary.",
    "My experience is the opposite, but I live in a big city.",
    "Two things can go wrong:\n\n1. the funding\n2. the politics",
    "That's a fair criticism of the coverage in general, less of this article.",
    "You can check the market odds on this site too, for what they're worth.",
    "It really comes down to whether people trust the institutions involved.",
    "I had the same question and couldn't find an answer.",
)

# The showcase article's thread: (author, index of the parent in this table, body, deleted).
CENTRAL_ASIA_THREAD: tuple[tuple[str, int | None, str, bool], ...] = (
    (
        "maria",
        None,
        "Good to see this region getting proper coverage. The **Middle Corridor** only works if "
        "Baku and the Central Asian capitals coordinate, so this is a logical step.",
        False,
    ),
    (
        "kenji",
        0,
        "@maria agreed, though a forum seat on its own doesn't move a single container. The "
        "customs pilot is the part to watch.",
        False,
    ),
    (
        "maria",
        1,
        "@kenji true. If the single-window system actually launches next year, that's worth more "
        "than any communiqué.",
        False,
    ),
    (
        "fatima",
        0,
        "Ferry capacity across the Caspian is still tiny compared with rail demand. The ports "
        "need investment first.",
        False,
    ),
    (
        "bob",
        None,
        "Honest question: does Azerbaijan joining change anything for ordinary traders, or is "
        "this mostly symbolic?",
        False,
    ),
    (
        "alice",
        4,
        "@bob the article says harmonised transit rules are on the table. For truck drivers that "
        "could mean hours saved at every border.",
        False,
    ),
    (
        "bob",
        5,
        "@alice fair enough, I skimmed past that paragraph. Hours at every border add up fast.",
        False,
    ),
    (
        "tomasz",
        4,
        "Symbolic *and* practical. Symbols matter in diplomacy: they signal where the money goes "
        "next.",
        False,
    ),
    (
        "priya",
        None,
        "Three things I'd want in a follow-up:\n\n- the water-sharing talks\n"
        "- financing for the rail links\n- what the bigger neighbours think",
        False,
    ),
    (
        "lucas",
        8,
        "Water is the one that could derail everything. Glad someone mentioned it.",
        False,
    ),
    (
        "diego",
        None,
        "All of this is [spin](https://example.org) from people who want more pipelines.",
        True,
    ),
    (
        "amina",
        None,
        "Well reported. I liked that the piece quoted traders and not only ministers.",
        False,
    ),
    (
        "editor",
        11,
        "Thanks @amina. We'll be following the transit talks closely over the coming months.",
        False,
    ),
    (
        "amina",
        12,
        "Looking forward to it. A piece on the ferry ports would be great.",
        False,
    ),
    (
        "kenji",
        None,
        "There's a market on the transit agreement linked below. I'd put the odds lower than the "
        "crowd does; these things take time.",
        False,
    ),
)


# --------------------------------------------------------------------------------------------
# Markets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketSpec:
    slug: str
    question: str
    outcomes: tuple[str, ...]
    tags: tuple[str, ...]
    articles: tuple[str, ...]  # article slugs
    created_hours_ago: int
    closes_at: datetime
    liquidity_cents: int
    created_by: str | None
    description: str
    resolution_criteria: str


def _at(year: int, month: int, day: int, hour: int = 23, minute: int = 59) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


MARKETS: tuple[MarketSpec, ...] = (
    MarketSpec(
        slug="central-asia-transit-agreement-by-june-2027",
        question="Will the Central Asian forum sign a regional transit agreement by 30 June 2027?",
        outcomes=("Yes", "No"),
        tags=("central-asia", "regional-integration", "azerbaijan"),
        articles=(
            CENTRAL_ASIA_SLUG,
            "baku-hosts-caspian-connectivity-conference-ahead-of-forum-expansion",
            "middle-corridor-freight-volumes-double-as-shippers-seek-alternatives",
        ),
        created_hours_ago=4,
        closes_at=_at(2027, 6, 30),
        liquidity_cents=50_000,
        created_by="editor",
        description="""
            At their latest meeting, the leaders of the five Central Asian states and Azerbaijan
            agreed to work toward harmonised transit rules along the trans-Caspian route. This
            market asks whether that work produces a signed agreement before the end of June 2027.
        """,
        resolution_criteria="""
            Resolves Yes if, by 23:59 UTC on 30 June 2027, at least five of the six forum members
            sign a document described by the signatories as a transit or customs agreement. A
            declaration of intent or a memorandum without binding commitments does not count.
            Resolves No otherwise.
        """,
    ),
    MarketSpec(
        slug="presidential-run-off-winner",
        question="Who will win the presidential run-off on 10 January 2027?",
        outcomes=("Elena Varga", "Tomas Reyes"),
        tags=("elections",),
        articles=("polls-tighten-ahead-of-presidential-run-off",),
        created_hours_ago=70,
        closes_at=_at(2027, 1, 9, 18, 0),
        liquidity_cents=80_000,
        created_by="admin",
        description="""
            The run-off pits former finance minister Elena Varga against regional governor Tomas
            Reyes. Polls show the gap narrowing to within a few points ahead of the final debate.
        """,
        resolution_criteria="""
            Resolves to the candidate declared the winner in the official results certified by the
            electoral commission. If the run-off is postponed beyond 31 March 2027, the market is
            cancelled.
        """,
    ),
    MarketSpec(
        slug="fed-rate-cut-by-march-2027",
        question="Will the US Federal Reserve cut its policy rate at or before its March 2027 "
        "meeting?",
        outcomes=("Yes", "No"),
        tags=("central-banks", "interest-rates"),
        articles=(
            "central-banks-hold-rates-as-inflation-cools-unevenly",
            "emerging-market-currencies-rally-as-dollar-softens",
        ),
        created_hours_ago=40 * 24,
        closes_at=_at(2027, 3, 16, 12, 0),
        liquidity_cents=60_000,
        created_by="editor",
        description="""
            Central banks held rates this month, citing stubborn services inflation. Markets are
            divided on whether the first cut comes in the first quarter of 2027 or later.
        """,
        resolution_criteria="""
            Resolves Yes if the upper bound of the federal funds target range announced at any
            scheduled or unscheduled meeting up to and including the March 2027 meeting is lower
            than it is on the day this market opens. Resolves No otherwise.
        """,
    ),
    MarketSpec(
        slug="brent-crude-end-of-march-2027",
        question="Where will Brent crude settle on the last trading day of March 2027?",
        outcomes=("Below $60", "$60 to $70", "$70 to $80", "$80 to $90", "Above $90"),
        tags=("oil", "energy"),
        articles=(
            "oil-prices-slip-as-producers-signal-output-increase",
            "global-growth-forecast-trimmed-as-trade-slows",
        ),
        created_hours_ago=20 * 24,
        closes_at=_at(2027, 3, 30, 12, 0),
        liquidity_cents=40_000,
        created_by=None,
        description="""
            Producers have signalled a gradual return of withheld output in the first quarter,
            while inventories sit close to their five-year average.
        """,
        resolution_criteria="""
            Resolves to the range containing the front-month Brent futures settlement price on the
            last trading day of March 2027, in US dollars per barrel. A price exactly on a boundary
            belongs to the higher range.
        """,
    ),
    MarketSpec(
        slug="2026-warmest-year-on-record",
        question="Will 2026 be confirmed as the warmest year on record?",
        outcomes=("Yes", "No"),
        tags=("climate-change",),
        articles=(
            "this-years-heatwave-season-ran-longer-than-any-on-record",
            "marine-heatwaves-push-coral-bleaching-into-deeper-waters",
            "glacier-loss-in-high-asia-accelerates-study-finds",
        ),
        created_hours_ago=50 * 24,
        closes_at=_at(2027, 1, 8),
        liquidity_cents=30_000,
        created_by="editor",
        description="""
            A long heatwave season and record ocean temperatures have put 2026 in contention for
            the warmest year since reliable measurements began.
        """,
        resolution_criteria="""
            Resolves Yes if the first annual global temperature report published by a major
            national meteorological agency in 2027 ranks 2026 as the warmest year on record.
            Resolves No if it ranks 2026 anywhere else.
        """,
    ),
    MarketSpec(
        slug="high-risk-ai-audit-rules-in-force-by-august-2027",
        question="Will the high-risk AI audit rules take effect by 1 August 2027?",
        outcomes=("Yes", "No"),
        tags=("artificial-intelligence", "regulation"),
        articles=(
            "regulators-publish-first-audit-rules-for-high-risk-ai-systems",
            "electoral-commissions-prepare-for-a-season-of-deepfakes",
        ),
        created_hours_ago=5 * 24 - 3,
        closes_at=_at(2027, 7, 31),
        liquidity_cents=45_000,
        created_by="admin",
        description="""
            Regulators have published detailed audit rules for high-risk AI systems. Industry
            groups have asked for more time to comply, and a delay is under discussion.
        """,
        resolution_criteria="""
            Resolves Yes if the audit obligations apply to providers of high-risk systems on 1
            August 2027 without a general postponement. Resolves No if their application is
            postponed or suspended before that date.
        """,
    ),
    MarketSpec(
        slug="open-weight-model-tops-leaderboard-2027",
        question="Will an open-weight model rank first on a major public AI leaderboard before "
        "1 July 2027?",
        outcomes=("Yes", "No"),
        tags=("artificial-intelligence", "research"),
        articles=(
            "open-weight-language-models-close-gap-with-commercial-rivals",
            "chipmakers-expand-capacity-as-demand-for-ai-hardware-persists",
        ),
        created_hours_ago=18 * 24 - 5,
        closes_at=_at(2027, 6, 30),
        liquidity_cents=20_000,
        created_by=None,
        description="""
            Freely downloadable models have narrowed the gap with commercial systems to a few
            points on most benchmarks. Can one of them take the top spot?
        """,
        resolution_criteria="""
            Resolves Yes if, at any time before 1 July 2027, a model whose weights are publicly
            downloadable holds the first place alone on the overall ranking of a widely cited
            public leaderboard. Resolves No otherwise.
        """,
    ),
    MarketSpec(
        slug="lunar-lander-launch-date",
        question="When will the robotic lunar lander launch?",
        outcomes=(
            "Before April 2027",
            "April to June 2027",
            "July to December 2027",
            "2028 or later",
        ),
        tags=("space",),
        articles=("lunar-lander-mission-enters-final-testing-phase",),
        created_hours_ago=30 * 24 - 6,
        closes_at=_at(2027, 2, 28),
        liquidity_cents=25_000,
        created_by="editor",
        description="""
            The lander has entered its final round of vibration and thermal tests and is due to
            be shipped to the launch site early next year.
        """,
        resolution_criteria="""
            Resolves to the period containing the lander's launch date (UTC) as announced by the
            agency after lift-off. A launch that fails still counts as a launch.
        """,
    ),
    MarketSpec(
        slug="caspian-pipeline-expansion-fid-in-2027",
        question="Will the Caspian gas pipeline expansion reach a final investment decision in "
        "2027?",
        outcomes=("Yes", "No"),
        tags=("azerbaijan", "energy", "european-union"),
        articles=(
            "caspian-gas-pipeline-expansion-moves-toward-final-investment-decision",
            "europe-enters-winter-with-gas-storage-near-capacity",
        ),
        created_hours_ago=22 * 24 - 2,
        closes_at=_at(2027, 12, 31),
        liquidity_cents=35_000,
        created_by="admin",
        description="""
            The pipeline's partners say engineering studies are complete and a decision depends on
            European buyers signing long-term contracts.
        """,
        resolution_criteria="""
            Resolves Yes if the project's partners announce a final investment decision on the
            capacity expansion between 1 January and 31 December 2027. Resolves No otherwise.
        """,
    ),
    MarketSpec(
        slug="malaria-vaccine-countries-by-mid-2027",
        question="How many countries will have introduced the new malaria vaccine by 30 June 2027?",
        outcomes=("Fewer than 14", "14 to 17", "18 to 21", "22 or more"),
        tags=("public-health", "africa"),
        articles=("new-malaria-vaccine-rollout-reaches-ten-countries",),
        created_hours_ago=7 * 24 - 4,
        closes_at=_at(2027, 6, 29),
        liquidity_cents=15_000,
        created_by="editor",
        description="""
            The vaccination programme has reached ten countries so far, and more have applied for
            support to introduce the vaccine.
        """,
        resolution_criteria="""
            Resolves to the range containing the number of countries that have started routine
            vaccination with the new vaccine by 30 June 2027, according to the most recent figures
            published by the programme.
        """,
    ),
    MarketSpec(
        slug="coalition-sworn-in-before-february-2027",
        question="Will a new coalition government be sworn in before 1 February 2027?",
        outcomes=("Yes", "No"),
        tags=("elections", "european-union"),
        articles=("coalition-talks-stall-as-parties-split-over-budget-rules",),
        created_hours_ago=15 * 24 - 1,
        closes_at=_at(2027, 1, 31),
        liquidity_cents=20_000,
        created_by=None,
        description="""
            Coalition talks have stalled over borrowing rules, six weeks after an election that
            left no party close to a majority.
        """,
        resolution_criteria="""
            Resolves Yes if a new cabinet backed by a coalition of two or more parties is sworn in
            before 00:00 UTC on 1 February 2027. Resolves No otherwise, including if a new
            election is called.
        """,
    ),
    MarketSpec(
        slug="tariff-truce-extended-before-expiry",
        question="Will the tariff truce be extended before it expires on 15 November 2026?",
        outcomes=("Yes", "No"),
        tags=("trade", "china"),
        articles=(
            "tariff-truce-nears-expiry-with-no-deal-in-sight",
            "global-growth-forecast-trimmed-as-trade-slows",
        ),
        created_hours_ago=40 * 24,
        closes_at=datetime(2026, 11, 15, 0, 0, tzinfo=UTC),
        liquidity_cents=50_000,
        created_by="admin",
        description="""
            A temporary truce has kept a new round of tariffs on hold. Negotiators met by video
            link ahead of the deadline but issued no statement.
        """,
        resolution_criteria="""
            Resolves Yes if both governments announce an extension of the truce, of any length,
            before it expires on 15 November 2026. Resolves No otherwise.
        """,
    ),
    MarketSpec(
        slug="eu-gas-storage-above-half-on-1-february-2027",
        question="Will EU gas storage be more than 50% full on 1 February 2027?",
        outcomes=("Yes", "No"),
        tags=("energy", "european-union"),
        articles=("europe-enters-winter-with-gas-storage-near-capacity",),
        created_hours_ago=14 * 24 - 2,
        closes_at=_at(2027, 1, 31),
        liquidity_cents=30_000,
        created_by="editor",
        description="""
            Storage sites entered the heating season almost full. How much is left by February
            depends mostly on the weather.
        """,
        resolution_criteria="""
            Resolves Yes if the aggregate EU storage filling level published for 1 February 2027
            is above 50.0%. Resolves No otherwise.
        """,
    ),
)


# --------------------------------------------------------------------------------------------
# The plan: rows with timestamps and counters, computed without touching the database
# --------------------------------------------------------------------------------------------


@dataclass
class PlannedComment:
    sequence: int
    parent_sequence: int | None
    depth: int
    username: str
    body: str
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    reply_count: int = 0


@dataclass
class PlannedArticle:
    spec: ArticleSpec
    slug: str
    body: str
    published_at: datetime
    updated_at: datetime
    comments: list[PlannedComment] = field(default_factory=list)

    @property
    def comment_count(self) -> int:
        return sum(1 for c in self.comments if not c.deleted)

    @property
    def comment_seq(self) -> int:
        return len(self.comments)


def _word_count(text: str) -> int:
    return len(text.split())


def _chunks(sentences: list[str], parts: int, rng: random.Random) -> list[str]:
    """``sentences`` as ``parts`` paragraphs of uneven length (each at least one sentence)."""
    if not sentences:
        return []
    parts = max(1, min(parts, len(sentences)))
    cuts = sorted(rng.sample(range(1, len(sentences)), parts - 1)) if parts > 1 else []
    bounds = [0, *cuts, len(sentences)]
    return [" ".join(sentences[a:b]) for a, b in itertools.pairwise(bounds)]


def build_body(spec: ArticleSpec, rng: random.Random) -> str:
    """Lead, details, then background, reaction and outlook drawn from the article's desks.

    Between 3 and 8 paragraphs; long bodies get subheadings.
    """
    target = spec.words if spec.words is not None else rng.randint(150, 1100)
    own = [_flat(spec.lead), _flat(spec.details), *_items(spec.extra)]
    # Lead, details, extra (0-3), background (0-3, less the extra), reaction (0-2) and an outlook
    # paragraph when the article has desks: 3 to 8 paragraphs.
    most_context = max(0, 3 - (len(own) - 2))
    limits = {"context": 7 * most_context, "reaction": 8, "outlook": 3}
    shares = {"context": 0.62, "reaction": 0.28, "outlook": 0.10}
    desks = [DESKS[name] for name in spec.desks]
    pools: dict[str, list[str]] = {}
    for section in shares:
        pools[section] = [sentence for desk in desks for sentence in getattr(desk, section)]
        rng.shuffle(pools[section])
    remaining = max(target - sum(_word_count(p) for p in own), 0)
    chosen: dict[str, list[str]] = {section: [] for section in shares}
    for section, share in shares.items():
        pool, picked, words = pools[section], chosen[section], 0
        while (
            pool
            and len(picked) < limits[section]
            and words + _word_count(pool[-1]) <= remaining * share
        ):
            picked.append(pool.pop())
            words += _word_count(picked[-1])
    if not chosen["outlook"] and pools["outlook"]:
        chosen["outlook"].append(pools["outlook"].pop())

    def total() -> int:
        return sum(_word_count(p) for p in own + [s for c in chosen.values() for s in c])

    while total() < 150 and pools["context"] and len(chosen["context"]) < limits["context"]:
        chosen["context"].append(pools["context"].pop())
    context = _chunks(
        chosen["context"], min(most_context, math.ceil(len(chosen["context"]) / 4)), rng
    )
    reaction = _chunks(chosen["reaction"], min(2, math.ceil(len(chosen["reaction"]) / 3)), rng)
    outlook = [" ".join(chosen["outlook"])] if chosen["outlook"] else []
    long_form = len(own) + len(context) + len(reaction) + len(outlook) >= 7
    blocks = list(own)
    if context:
        blocks += (["## Background"] if long_form else []) + context
    blocks += reaction
    if outlook:
        blocks += (["## What comes next"] if long_form and context else []) + outlook
    return "\n\n".join(blocks)


def _comment_times(
    rng: random.Random, start: datetime, end: datetime, count: int
) -> list[datetime]:
    """``count`` strictly increasing times in [start, end), denser soon after ``start``."""
    span = int((end - start).total_seconds())
    offsets = sorted(int(span * rng.random() ** 1.7) for _ in range(count))
    times: list[datetime] = []
    previous = -1
    for offset in offsets:
        previous = max(offset, previous + 17)
        times.append(start + timedelta(seconds=previous))
    return times


def _edited_at(rng: random.Random, created_at: datetime, deleted: bool) -> datetime | None:
    if deleted or rng.random() >= 0.06:
        return None
    edited = created_at + timedelta(minutes=rng.randint(2, 40))
    return edited if edited < BASE else None


def _top_level_body(spec: ArticleSpec, used: set[str], rng: random.Random) -> str:
    pool = [body for desk in spec.desks for body in TOP_COMMENTS_BY_DESK[desk]]
    pool += TOP_COMMENTS_GENERAL
    fresh = [body for body in pool if body not in used]
    if fresh:
        return rng.choice(fresh)
    for _ in range(50):
        body = f"{rng.choice(pool)} {rng.choice(TOP_COMMENT_TAILS)}"
        if body not in used:
            return body
    return rng.choice(pool)


def _reply_body(parent: str, used: set[str], rng: random.Random) -> str:
    body = ""
    for _ in range(50):
        opener = rng.choice(REPLY_OPENERS).format(parent=parent)
        body = f"{opener} {rng.choice(REPLY_POINTS)}"
        if body not in used:
            break
    return body


def build_generated_comments(
    spec: ArticleSpec, published_at: datetime, count: int, rng: random.Random
) -> list[PlannedComment]:
    """A thread of ``count`` comments: top level, replies and replies to replies."""
    start = published_at + timedelta(minutes=3)
    end = min(BASE - timedelta(minutes=2), published_at + timedelta(hours=rng.randint(30, 120)))
    plans: list[PlannedComment] = []
    used: set[str] = set()
    for sequence, created_at in enumerate(_comment_times(rng, start, end, count), start=1):
        parents = [c for c in plans if c.depth < 2 and not c.deleted]
        parent = rng.choice(parents) if parents and rng.random() < 0.55 else None
        if parent is None:
            username = rng.choice(COMMENTERS)
            body = _top_level_body(spec, used, rng)
        else:
            username = rng.choice([u for u in COMMENTERS if u != parent.username])
            body = _reply_body(parent.username, used, rng)
        used.add(body)
        deleted = rng.random() < 0.04
        plans.append(
            PlannedComment(
                sequence=sequence,
                parent_sequence=parent.sequence if parent else None,
                depth=parent.depth + 1 if parent else 0,
                username=username,
                body=body,
                created_at=created_at,
                edited_at=_edited_at(rng, created_at, deleted),
                deleted=deleted,
            )
        )
    return plans


def build_scripted_comments(
    thread: tuple[tuple[str, int | None, str, bool], ...],
    published_at: datetime,
    rng: random.Random,
) -> list[PlannedComment]:
    """A hand-written thread, spread between publication and ``BASE``."""
    start = published_at + timedelta(minutes=4)
    times = _comment_times(rng, start, BASE - timedelta(minutes=2), len(thread))
    plans: list[PlannedComment] = []
    for index, (username, parent_index, body, deleted) in enumerate(thread):
        parent = plans[parent_index] if parent_index is not None else None
        if parent is not None and (parent.deleted or parent.depth >= 2):
            raise ValueError(f"comment {index} replies to a deleted or too deep comment")
        plans.append(
            PlannedComment(
                sequence=index + 1,
                parent_sequence=parent.sequence if parent else None,
                depth=parent.depth + 1 if parent else 0,
                username=username,
                body=body,
                created_at=times[index],
                edited_at=None,
                deleted=deleted,
            )
        )
    return plans


def _count_replies(comments: list[PlannedComment]) -> None:
    by_sequence = {c.sequence: c for c in comments}
    for comment in comments:
        comment.reply_count = 0
    for comment in comments:
        if comment.parent_sequence is not None and not comment.deleted:
            by_sequence[comment.parent_sequence].reply_count += 1


def _comment_count(spec: ArticleSpec, rng: random.Random) -> int:
    if spec.comments is not None:
        return spec.comments
    return 0 if rng.random() < 0.12 else rng.randint(1, 25)


def build_plan() -> list[PlannedArticle]:
    """Every article with its body, timestamps and comment thread, oldest first."""
    rng = random.Random(SEED)
    articles: list[PlannedArticle] = []
    for spec in ARTICLES:
        slug = slugify(spec.title)
        if spec.days_ago == 0:
            published_at = BASE - timedelta(hours=5)
        else:
            published_at = BASE - timedelta(days=spec.days_ago, minutes=rng.randint(0, 14 * 60))
        updated_at = published_at
        if rng.random() < 0.3:
            updated_at = published_at + timedelta(minutes=rng.randint(10, 180))
        body = build_body(spec, rng)
        if slug == CENTRAL_ASIA_SLUG:
            comments = build_scripted_comments(CENTRAL_ASIA_THREAD, published_at, rng)
        else:
            comments = build_generated_comments(spec, published_at, _comment_count(spec, rng), rng)
        _count_replies(comments)
        articles.append(PlannedArticle(spec, slug, body, published_at, updated_at, comments))
    articles.sort(key=lambda a: a.published_at)
    _check_plan(articles)
    return articles


def _check_plan(articles: list[PlannedArticle]) -> None:
    """Catch mistakes in the tables above early, with a clear message."""
    slugs = [a.slug for a in articles]
    if len(set(slugs)) != len(slugs):
        raise ValueError("duplicate article slug")
    categories = {slug for slug, _, _ in CATEGORIES}
    tags = {slug for slug, _ in TAGS}
    authors = {slug for slug, _, _, _ in AUTHORS}
    for article in articles:
        spec = article.spec
        if spec.category not in categories or spec.author not in authors:
            raise ValueError(f"{article.slug}: unknown category or author")
        if not set(spec.tags) <= tags or not 2 <= len(set(spec.tags)) <= 5:
            raise ValueError(f"{article.slug}: bad tags {spec.tags}")
        paragraphs = [p for p in article.body.split("\n\n") if not p.startswith("#")]
        if not 3 <= len(paragraphs) <= 8:
            raise ValueError(f"{article.slug}: {len(paragraphs)} paragraphs")
    for market in MARKETS:
        if not set(market.articles) <= set(slugs) or not set(market.tags) <= tags:
            raise ValueError(f"{market.slug}: unknown article or tag")
        if not 2 <= len(market.outcomes) <= 5:
            raise ValueError(f"{market.slug}: needs 2 to 5 outcomes")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


async def _database_is_empty() -> bool:
    return not (await User.all().exists() or await Article.all().exists())


async def load_demo_data() -> bool:
    """Insert the demo data set if the database has no users and no articles.

    Tortoise must be initialised. Returns whether anything was loaded. Everything goes in one
    transaction: either the whole data set is there or none of it.
    """
    if not await _database_is_empty():
        return False
    plan = build_plan()
    password_hash = hash_password(DEMO_PASSWORD)

    async with in_transaction() as conn:
        await User.bulk_create(
            [
                User(
                    username=u.username,
                    display_name=u.display_name,
                    password_hash=password_hash,
                    role=u.role,
                    created_at=BASE - timedelta(days=u.joined_days_ago, hours=3),
                )
                for u in USERS
            ],
            using_db=conn,
        )
        user_ids: dict[str, int] = dict(await User.all(using_db=conn).values_list("username", "id"))
        # Every account starts with the sign-up grant, through the ledger like a real sign-up.
        grant = load_settings().signup_grant_cents
        for u in USERS:
            await grant_starting_credits(
                conn, user_ids[u.username], grant, BASE - timedelta(days=u.joined_days_ago, hours=3)
            )

        await Author.bulk_create(
            [
                Author(
                    slug=slug,
                    name=name,
                    bio=bio,
                    user_id=user_ids[username] if username else None,
                )
                for slug, name, bio, username in AUTHORS
            ],
            using_db=conn,
        )
        author_ids: dict[str, int] = dict(await Author.all(using_db=conn).values_list("slug", "id"))

        # One at a time: a category's path holds its own id.
        category_ids: dict[str, int] = {}
        category_paths: dict[str, str] = {}
        positions: dict[str | None, int] = {}
        for slug, name, parent in CATEGORIES:
            position = positions.get(parent, 0)
            positions[parent] = position + 1
            category = await Category.create(
                slug=slug,
                name=name,
                parent_id=category_ids[parent] if parent else None,
                path="",
                depth=category_paths[parent].count("/") - 1 if parent else 0,
                position=position,
                using_db=conn,
            )
            category.path = f"{category_paths[parent] if parent else '/'}{category.id}/"
            await category.save(using_db=conn, update_fields=["path"])
            category_ids[slug] = category.id
            category_paths[slug] = category.path

        await Tag.bulk_create(
            [Tag(slug=slug, name=name) for slug, name in TAGS],
            using_db=conn,
        )
        tag_ids: dict[str, int] = dict(await Tag.all(using_db=conn).values_list("slug", "id"))

        await Article.bulk_create(
            [
                Article(
                    slug=a.slug,
                    title=a.spec.title,
                    excerpt=_flat(a.spec.excerpt),
                    body=a.body,
                    word_count=_word_count(a.body),
                    published_at=a.published_at,
                    updated_at=a.updated_at,
                    featured=a.spec.featured,
                    author_id=author_ids[a.spec.author],
                    category_id=category_ids[a.spec.category],
                    comment_count=a.comment_count,
                    comment_seq=a.comment_seq,
                )
                for a in plan
            ],
            using_db=conn,
        )
        article_ids: dict[str, int] = dict(
            await Article.all(using_db=conn).values_list("slug", "id")
        )
        await ArticleTag.bulk_create(
            [
                ArticleTag(article_id=article_ids[a.slug], tag_id=tag_ids[tag])
                for a in plan
                for tag in a.spec.tags
            ],
            using_db=conn,
        )

        # Comments go in oldest article first, in sequence order, so ids follow creation order;
        # parents are linked afterwards, once every comment has its id.
        await Comment.bulk_create(
            [
                Comment(
                    article_id=article_ids[a.slug],
                    parent_id=None,
                    author_id=user_ids[c.username],
                    sequence=c.sequence,
                    body=c.body,
                    body_html=render_markdown(c.body),
                    created_at=c.created_at,
                    edited_at=c.edited_at,
                    deleted=c.deleted,
                    reply_count=c.reply_count,
                )
                for a in plan
                for c in a.comments
            ],
            batch_size=500,
            using_db=conn,
        )
        comment_ids: dict[tuple[int, int], int] = {
            (article_id, sequence): comment_id
            for comment_id, article_id, sequence in await Comment.all(using_db=conn).values_list(
                "id", "article_id", "sequence"
            )
        }
        links = [
            Comment(
                id=comment_ids[(article_ids[a.slug], c.sequence)],
                parent_id=comment_ids[(article_ids[a.slug], c.parent_sequence)],
            )
            for a in plan
            for c in a.comments
            if c.parent_sequence is not None
        ]
        if links:
            await Comment.bulk_update(links, fields=["parent_id"], batch_size=200, using_db=conn)

        await Market.bulk_create(
            [
                Market(
                    slug=m.slug,
                    question=m.question,
                    description=_flat(m.description),
                    resolution_criteria=_flat(m.resolution_criteria),
                    created_at=BASE - timedelta(hours=m.created_hours_ago),
                    created_by_id=user_ids[m.created_by] if m.created_by else None,
                    state=MarketState.OPEN,
                    closes_at=m.closes_at,
                    resolved_at=None,
                    resolved_outcome_id=None,
                    liquidity_cents=m.liquidity_cents,
                    volume_cents=0,
                    trader_count=0,
                    odds_seq=0,
                )
                for m in MARKETS
            ],
            using_db=conn,
        )
        market_ids: dict[str, int] = dict(await Market.all(using_db=conn).values_list("slug", "id"))
        await Outcome.bulk_create(
            [
                Outcome(market_id=market_ids[m.slug], position=i, label=label, shares_units=0)
                for m in MARKETS
                for i, label in enumerate(m.outcomes)
            ],
            using_db=conn,
        )
        await MarketTag.bulk_create(
            [
                MarketTag(market_id=market_ids[m.slug], tag_id=tag_ids[tag])
                for m in MARKETS
                for tag in m.tags
            ],
            using_db=conn,
        )
        await MarketArticle.bulk_create(
            [
                MarketArticle(market_id=market_ids[m.slug], article_id=article_ids[slug])
                for m in MARKETS
                for slug in m.articles
            ],
            using_db=conn,
        )
        # Each market maker is funded by the issuer, as createMarket does.
        for m in MARKETS:
            created = BASE - timedelta(hours=m.created_hours_ago)
            await fund_market(conn, market_ids[m.slug], m.liquidity_cents, created)
            even = 1 / len(m.outcomes)
            await record_price(conn, market_ids[m.slug], [even] * len(m.outcomes), created)
    await _trade_history(market_ids, user_ids)
    return True


class _WalkingClock:
    """A clock the demo trades set by hand, so the charts have days of history."""

    def __init__(self) -> None:
        self.now = BASE

    def __call__(self) -> datetime:
        return self.now


async def _trade_history(market_ids: dict[str, int], user_ids: dict[str, int]) -> None:
    """Trade most markets through the real engine, spread over the days before BASE."""
    rng = random.Random(20261128)
    clock = _WalkingClock()
    trading = Trading(Settings(), clock=clock)
    traders = [u for u in USERS if u.role == Role.READER]
    users = {u.username: await User.get(id=user_ids[u.username]) for u in traders}
    for m in MARKETS[: max(1, len(MARKETS) - 3)]:
        market_id = market_ids[m.slug]
        outcomes = await Outcome.filter(market_id=market_id).order_by("position")
        favourite = rng.randrange(len(outcomes))
        start = BASE - timedelta(hours=m.created_hours_ago)
        end = min(BASE, m.closes_at - timedelta(hours=1))
        count = rng.randint(8, 30)
        step = (end - start) / (count + 1)
        for n in range(count):
            clock.now = start + step * (n + 1) + timedelta(minutes=rng.randint(0, 30))
            user = users[rng.choice(traders).username]
            held = [
                p
                for p in await Position.filter(user_id=user.id, market_id=market_id)
                if p.shares_units > 0
            ]
            if held and rng.random() < 0.25:
                position = rng.choice(held)
                units = max(1, position.shares_units // rng.choice([2, 3, 1]))
                with contextlib.suppress(Refusal):  # e.g. a sale worth under a cent
                    await trading.sell(user, position.outcome_id, units)
                continue
            index = favourite if rng.random() < 0.6 else rng.randrange(len(outcomes))
            amount = rng.choice([500, 1000, 1500, 2500, 4000, 6000])
            with contextlib.suppress(Refusal):  # a reader who has spent everything
                await trading.buy(user, outcomes[index].id, amount)


async def _load(settings: Settings) -> bool:
    await Tortoise.init(config=tortoise_config(settings))
    try:
        return await load_demo_data()
    finally:
        await Tortoise.close_connections()


def main() -> None:
    """``python -m db.seed``: load the demo data into an empty, migrated database."""
    settings = load_settings()
    if settings.is_production:
        print(
            "refusing to load demo data: AGORA_ENV is 'production' "
            "(demo data is for development and test databases only)",
            file=sys.stderr,
        )
        sys.exit(2)
    loaded = asyncio.run(_load(settings))
    print("demo data loaded" if loaded else "database not empty: demo data not loaded")


if __name__ == "__main__":
    main()
