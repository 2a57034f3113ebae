//! A small shop on `#[derive(StoredRecord)]`: customers keyed by id, orders
//! keyed by `(customer_id, order_no)`, prefix queries for a customer's
//! orders, and payments that move money between two tables atomically.
//!
//! Run with `cargo run --example shop`; `cargo run --example shop -- shop.redb`
//! keeps the database in `shop.redb` (a new file: an existing one is refused),
//! to look into with `storage-inspect`.

use storage::{Error, Storage, StoredRecord, StoredType};

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "customers")]
struct Customer {
    #[key]
    id: u64,
    name: String,
    email: String,
    balance_cents: i64,
    tags: Vec<String>,
}

#[derive(StoredType, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct LineItem {
    sku: String,
    quantity: u32,
    price_cents: i64,
}

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "orders")]
struct Order {
    #[key]
    customer_id: u64,
    #[key]
    order_no: u32,
    items: Vec<LineItem>,
    total_cents: i64,
    paid: bool,
    note: Option<String>,
}

fn customer(id: u64, name: &str, balance_cents: i64) -> Customer {
    Customer {
        id,
        name: name.to_owned(),
        email: format!("{}@example.com", name.to_lowercase()),
        balance_cents,
        tags: vec!["retail".to_owned()],
    }
}

fn order(
    customer_id: u64,
    order_no: u32,
    items: Vec<(&str, u32, i64)>,
    note: Option<&str>,
) -> Order {
    let items: Vec<LineItem> = items
        .into_iter()
        .map(|(sku, quantity, price_cents)| LineItem {
            sku: sku.to_owned(),
            quantity,
            price_cents,
        })
        .collect();
    let total_cents = items
        .iter()
        .map(|i| i64::from(i.quantity) * i.price_cents)
        .sum();
    Order {
        customer_id,
        order_no,
        items,
        total_cents,
        paid: false,
        note: note.map(str::to_owned),
    }
}

/// Pays an order from the customer's balance: both tables change, or neither.
fn pay(storage: &Storage, key: OrderKey) -> storage::Result<i64> {
    storage.write(|tx| {
        let mut orders = tx.records::<Order>();
        let mut order = orders
            .get_owned(&key)?
            .ok_or_else(|| Error::abort(format!("no order {key:?}")))?;
        if order.paid {
            return Err(Error::abort(format!("order {key:?} is already paid")));
        }
        let mut customers = tx.records::<Customer>();
        let mut customer = customers
            .get_owned(order.customer_id)?
            .ok_or_else(|| Error::abort(format!("no customer {}", order.customer_id)))?;
        if customer.balance_cents < order.total_cents {
            return Err(Error::abort(format!(
                "{} has {} cents, the order costs {}",
                customer.name, customer.balance_cents, order.total_cents
            )));
        }
        customer.balance_cents -= order.total_cents;
        order.paid = true;
        customers.insert(&customer)?;
        orders.insert(&order)?;
        Ok(customer.balance_cents)
    })
}

fn main() -> storage::Result<()> {
    let dir = tempfile::tempdir().map_err(Error::abort)?;
    let path = match std::env::args_os().nth(1) {
        Some(kept) => {
            let kept = std::path::PathBuf::from(kept);
            if kept.exists() {
                return Err(Error::abort(format!(
                    "{} exists: remove it or name a new file",
                    kept.display()
                )));
            }
            kept
        }
        None => dir.path().join("shop.redb"),
    };
    let storage = Storage::new(&path)?;

    let customers = storage.records::<Customer>();
    customers.insert_batch([
        customer(1, "Ada", 10_000),
        customer(2, "Brian", 1_500),
        customer(3, "Chen", 0),
    ])?;
    println!("{} customers", customers.len()?);

    let orders = storage.records::<Order>();
    orders.insert_batch([
        order(1, 1, vec![("pen", 3, 250), ("ink", 1, 900)], None),
        order(1, 2, vec![("paper", 2, 600)], Some("leave at the door")),
        order(2, 1, vec![("stapler", 1, 2_400)], None),
        order(3, 1, vec![("clip", 10, 5)], None),
    ])?;

    // Every order of customer 1: a prefix query on the leading key part.
    let ada = orders.prefix((1,), |key, o| {
        Some((key.1, o.total_cents(), o.note().map(str::to_owned)))
    })?;
    println!("Ada's orders (no, total, note): {ada:?}");

    // Paying moves money out of `customers` and marks the order in `orders`
    // in one transaction.
    println!("pay (1, 1): balance left {}", pay(&storage, (1, 1))?);
    match pay(&storage, (2, 1)) {
        Ok(left) => println!("pay (2, 1): balance left {left}"),
        Err(e) => println!("pay (2, 1) refused: {e}"),
    }
    match pay(&storage, (1, 1)) {
        Ok(left) => println!("pay (1, 1) again: balance left {left}"),
        Err(e) => println!("pay (1, 1) again refused: {e}"),
    }

    // The refused payments left both tables as they were.
    let brian = customers.get(2, |c| c.balance_cents())?;
    let unpaid = orders.scan(|key, o| (!o.paid()).then_some(*key))?;
    println!("Brian's balance is still {brian:?}; unpaid orders: {unpaid:?}");

    // A consistent snapshot across both tables.
    let (owed, held) = storage.read(|tx| {
        let owed: i64 = tx
            .records::<Order>()
            .scan(|_, o| (!o.paid()).then(|| o.total_cents()))?
            .iter()
            .sum();
        let held: i64 = tx
            .records::<Customer>()
            .scan(|_, c| Some(c.balance_cents()))?
            .iter()
            .sum();
        Ok((owed, held))
    })?;
    println!("open orders total {owed} cents; customers hold {held} cents");
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The layouts of this example's record types, locked in `schemas/`:
    /// a change without a version bump fails here.
    #[test]
    fn schemas_are_locked() {
        storage::schema_lock!("schemas", super::Customer, super::Order);
    }
}
