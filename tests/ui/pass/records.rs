//! The derive in use: single and composite keys, accessors, queries.

use storage::{Storage, StoredRecord};

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "customers", version = 3)]
pub struct Customer {
    #[key]
    pub id: u64,
    pub name: String,
    pub emails: Vec<String>,
    pub vip: bool,
}

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Order {
    #[key]
    pub customer: u64,
    #[key]
    pub number: u32,
    pub cents: i64,
    pub note: Option<String>,
}

fn main() -> storage::Result<()> {
    let storage = Storage::in_memory()?;
    storage.records::<Customer>().insert(&Customer {
        id: 1,
        name: "Ann".into(),
        emails: vec!["ann@example.com".into()],
        vip: true,
    })?;
    storage.write(|tx| {
        let mut orders = tx.records::<Order>();
        orders.insert(&Order { customer: 1, number: 1, cents: 500, note: None })?;
        orders.insert(&Order { customer: 1, number: 2, cents: 700, note: Some("gift".into()) })?;
        Ok(())
    })?;
    let key: OrderKey = (1, 2);
    let note = storage.records::<Order>().get(&key, |o| o.note().map(str::to_owned))?;
    assert_eq!(note, Some(Some("gift".to_owned())));
    let total: i64 = storage.records::<Order>().prefix((1,), |_, o| Some(o.cents()))?.iter().sum();
    assert_eq!(total, 1200);
    let customer: CustomerKey = 1;
    let email = storage.records::<Customer>().get(customer, |c| c.emails().next().map(str::to_owned))?;
    assert_eq!(email.flatten().as_deref(), Some("ann@example.com"));
    assert_eq!(Customer::SCHEMA.table, "customers");
    assert_eq!(Order::SCHEMA.table, "order");
    Ok(())
}
