"""The ledger of every participant: accounts, orders, fills, positions, cash movements, equity.

Rows are written only by trading/services.py and never deleted. Column sizes follow the
quantization rules of trading/engine.py (money 10 places, prices 16, quantities 12), so what
the engine computed is what the database holds.
"""

from django.db import models
from django.db.models import Q

from trading.engine import FillReason, LedgerKind, OrderSide, PositionSide


def money_field(**kwargs):
    return models.DecimalField(max_digits=28, decimal_places=10, **kwargs)


def price_field(**kwargs):
    # PEPE trades near 1e-5: 16 places keep every significant digit of a fill price
    return models.DecimalField(max_digits=36, decimal_places=16, **kwargs)


def quantity_field(**kwargs):
    return models.DecimalField(max_digits=36, decimal_places=12, **kwargs)


class OrderStatus(models.TextChoices):
    FILLED = "filled"
    REJECTED = "rejected"


class Account(models.Model):
    participant = models.OneToOneField(
        "competitions.Participant", on_delete=models.PROTECT, related_name="account"
    )
    initial_capital = money_field()
    cash = money_field()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(initial_capital__gt=0), name="account_capital_positive"),
        ]

    def __str__(self):
        return f"account of participant {self.participant_id}"


class Order(models.Model):
    """What an agent asked for, filled or rejected, kept either way."""

    Status = OrderStatus

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="orders")
    # agents.Invocation does not exist yet; the round stores its id here (nullable: admin/API orders)
    invocation_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    client_ref = models.CharField(
        max_length=100, blank=True, default="", help_text="Caller's idempotency key, unique per account"
    )
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=8, help_text="buy or sell as filled; as asked when rejected")
    quantity = quantity_field(null=True, blank=True)
    notional_usd = money_field(null=True, blank=True)
    leverage = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    stop_loss = price_field(null=True, blank=True)
    take_profit = price_field(null=True, blank=True)
    status = models.CharField(max_length=8, choices=OrderStatus.choices)
    reject_code = models.CharField(max_length=40, blank=True, default="")
    reject_reason = models.CharField(max_length=300, blank=True, default="")
    market_time = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=OrderStatus.values), name="order_status_valid"),
            models.CheckConstraint(
                condition=Q(status="filled", reject_code="") | (Q(status="rejected") & ~Q(reject_code="")),
                name="order_rejection_has_code",
            ),
            # idempotency: a retried round step finds its order instead of filling twice
            models.UniqueConstraint(
                fields=["account", "client_ref"], condition=~Q(client_ref=""), name="order_client_ref_unique"
            ),
        ]

    def __str__(self):
        return f"{self.side} {self.quantity or self.notional_usd} {self.symbol} ({self.status})"


class Position(models.Model):
    """One netted position per (account, symbol) while open; closed rows stay as history."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="positions")
    symbol = models.CharField(max_length=32)
    asset_class = models.CharField(max_length=16, default="crypto")
    side = models.CharField(max_length=5, choices=[(s.value, s.value) for s in PositionSide])
    is_open = models.BooleanField(default=True)
    # open: the current size; closed: the size it had before its last closing fill
    quantity = quantity_field()
    entry_price = price_field()
    initial_margin = money_field()
    leverage = models.DecimalField(max_digits=20, decimal_places=8)
    stop_loss = price_field(null=True, blank=True)
    take_profit = price_field(null=True, blank=True)
    closed_quantity = quantity_field(default=0)
    exit_price = price_field(null=True, blank=True, help_text="size-weighted average of the closing fills")
    realised_pnl = money_field(default=0)
    fees = money_field(default=0)
    funding = money_field(default=0, help_text="funding and financing, signed (+ received)")
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=20, blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "symbol"], condition=Q(is_open=True), name="position_one_open_per_symbol"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="position_quantity_positive"),
            models.CheckConstraint(condition=Q(entry_price__gt=0), name="position_entry_positive"),
            models.CheckConstraint(condition=Q(fees__gte=0), name="position_fees_not_negative"),
            models.CheckConstraint(condition=Q(initial_margin__gte=0), name="position_margin_not_negative"),
            models.CheckConstraint(
                condition=Q(side__in=[s.value for s in PositionSide]), name="position_side_valid"
            ),
            models.CheckConstraint(
                condition=Q(is_open=True, closed_at__isnull=True) | Q(is_open=False, closed_at__isnull=False),
                name="position_closed_at_iff_closed",
            ),
        ]
        indexes = [
            # account_view and the round load the open book of one account
            models.Index(fields=["account", "is_open"], name="position_account_open"),
        ]

    def __str__(self):
        return f"{self.side} {self.quantity} {self.symbol} @ {self.entry_price}"


class Fill(models.Model):
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="fills")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, null=True, blank=True, related_name="fills")
    position = models.ForeignKey(Position, on_delete=models.PROTECT, related_name="fills")
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4, choices=[(s.value, s.value) for s in OrderSide])
    quantity = quantity_field()
    price = price_field()
    fee = money_field()
    realised_pnl = money_field(default=0)
    closes = models.BooleanField(help_text="reduces or closes a position (else opens or adds)")
    initial_margin = money_field(default=0, help_text="margin reserved (opening) or released (closing)")
    reason = models.CharField(max_length=20, choices=[(r.value, r.value) for r in FillReason])
    market_time = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="fill_quantity_positive"),
            models.CheckConstraint(condition=Q(price__gt=0), name="fill_price_positive"),
            models.CheckConstraint(condition=Q(fee__gte=0), name="fill_fee_not_negative"),
            models.CheckConstraint(
                condition=Q(reason__in=[r.value for r in FillReason]), name="fill_reason_valid"
            ),
        ]

    def __str__(self):
        return f"{self.side} {self.quantity} {self.symbol} @ {self.price} ({self.reason})"


class LedgerEntry(models.Model):
    """Every cash movement; cash == initial_capital + sum(amount) for each account."""

    Kind = LedgerKind

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="ledger")
    kind = models.CharField(max_length=14, choices=[(k.value, k.value) for k in LedgerKind])
    amount = money_field(help_text="signed: + into cash, - out of cash")
    fill = models.ForeignKey(Fill, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger")
    position = models.ForeignKey(
        Position, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger"
    )
    description = models.CharField(max_length=200, blank=True, default="")
    market_time = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=[k.value for k in LedgerKind]), name="ledger_kind_valid"
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
            models.CheckConstraint(
                condition=~Q(kind=LedgerKind.FEE.value) | Q(amount__lt=0), name="ledger_fee_is_a_debit"
            ),
            models.CheckConstraint(
                condition=~Q(kind=LedgerKind.NBP_CREDIT.value) | Q(amount__gt=0),
                name="ledger_nbp_is_a_credit",
            ),
        ]

    def __str__(self):
        return f"{self.kind} {self.amount}"


class EquitySnapshot(models.Model):
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="equity_snapshots")
    market_time = models.DateTimeField()
    round_number = models.PositiveIntegerField(null=True, blank=True)
    equity = money_field()
    cash = money_field()
    unrealised_pnl = money_field()
    used_margin = money_field()
    free_margin = money_field()
    maintenance_requirement = money_field()
    open_positions = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["market_time", "id"]
        indexes = [
            # equity curves and the leaderboard read one account's snapshots in time order
            models.Index(fields=["account", "market_time"], name="equity_account_time"),
        ]

    def __str__(self):
        return f"equity {self.equity} at {self.market_time:%Y-%m-%d %H:%M}"
